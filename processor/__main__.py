import sys

from processor.fleet import main

sys.exit(main())
