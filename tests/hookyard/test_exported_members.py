"""The public surface for handler authors is exactly what `__all__` says, and each name is what it claims."""

from __future__ import annotations

import types

import hookyard
import hookyard.testing
import processor
from processor.event import Event
from processor.handlers import RetryLater, handler
from processor.testing import Harness


def test_the_public_names_are_pinned() -> None:
    assert hookyard.__all__ == ["Event", "HandlerOptions", "Registry", "RetryLater", "handler"]
    assert hookyard.testing.__all__ == ["Harness", "ManualClock", "sample_event"]
    for module in (hookyard, hookyard.testing):
        public = {
            name
            for name, value in vars(module).items()
            if name[0].isalpha() and name != "annotations" and not isinstance(value, types.ModuleType)
        }
        assert public == set(module.__all__), module.__name__


def test_the_names_are_the_processors_own() -> None:
    # One implementation behind both imports: a handler written against either registers in the same registry.
    assert hookyard.Event is Event is processor.Event
    assert hookyard.handler is handler is processor.handler
    assert hookyard.RetryLater is RetryLater
    assert hookyard.testing.Harness is Harness
