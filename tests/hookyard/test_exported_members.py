"""The public surface for handler authors is exactly what `__all__` says, and each name is what it claims."""

from __future__ import annotations

import types

import hookyard
import hookyard.mirror
import hookyard.testing
import processor
from processor.event import Event
from processor.handlers import RetryLater, Unprocessable, handler
from processor.mirror import status
from processor.testing import Harness


def test_the_public_names_are_pinned() -> None:
    assert hookyard.__all__ == ["Event", "HandlerOptions", "Registry", "RetryLater", "Unprocessable", "handler"]
    assert hookyard.testing.__all__ == ["Harness", "ManualClock", "sample_event"]
    assert hookyard.mirror.__all__ == [
        "DirectoryGroup",
        "DirectoryUser",
        "OrganizationStatus",
        "groups_of_user",
        "mirror_engine",
        "organization_status",
        "organization_statuses",
        "users_of_directory",
    ]
    for module in (hookyard, hookyard.testing, hookyard.mirror):
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
    assert hookyard.Unprocessable is Unprocessable
    assert hookyard.mirror.organization_status is status.organization_status
    assert hookyard.mirror.OrganizationStatus is status.OrganizationStatus
    assert hookyard.testing.Harness is Harness
