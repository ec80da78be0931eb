"""`python -m processor.cli`: the `hookyard` command without its console script."""

from __future__ import annotations

import sys

from processor.cli import main

sys.exit(main())
