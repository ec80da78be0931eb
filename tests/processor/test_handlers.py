"""The handler API: registration, validation, matching, ordering keys, discovery."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import processor
from processor import Event, Registry
from processor.discovery import load_handlers
from processor.ordering import key_function
from shared.errors import RegistrationError
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def make_event(etype: str, data: dict[str, Any]) -> Event:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Event("event_1", etype, data, "workos", None, now, now, now, b"{}")


def test_public_api_is_pinned() -> None:
    assert processor.__all__ == ["Event", "HandlerSpec", "Registry", "RetryLater", "default_registry", "handler"]


def test_name_defaults_to_module_and_qualname() -> None:
    registry = Registry()

    def sync_user(event: Event) -> None: ...

    registry.handler("dsync.user.*")(sync_user)
    [spec] = list(registry)
    assert spec.name == f"{__name__}.test_name_defaults_to_module_and_qualname.<locals>.sync_user"
    assert spec.order_by == "resource"
    assert (spec.max_attempts, spec.min_backoff_s, spec.max_backoff_s, spec.late) == (8, 1.0, 600.0, "deliver")


def test_patterns_are_globs_on_the_event_type() -> None:
    registry = Registry()
    registry.handler("dsync.user.*", name="users")(lambda e: None)
    registry.handler("*", name="all")(lambda e: None)
    registry.handler("connection.activated", "connection.deactivated", name="conn")(lambda e: None)
    assert [h.name for h in registry.matching("dsync.user.created")] == ["users", "all"]
    assert [h.name for h in registry.matching("dsync.group.created")] == ["all"]
    assert [h.name for h in registry.matching("connection.deactivated")] == ["all", "conn"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"order_by": "tenant"}, "order_by"),
        ({"late": "drop"}, "late"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"min_backoff": 5, "max_backoff": 1}, "min_backoff"),
        ({"name": "has space"}, "name"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "5m"}, "timeout"),
    ],
)
def test_bad_options_are_refused_naming_the_handler(options: dict[str, Any], message: str) -> None:
    registry = Registry()
    with pytest.raises(RegistrationError, match=message) as caught:
        registry.handler("dsync.*", **options)(lambda e: None)
    assert "handler" in str(caught.value)


@pytest.mark.parametrize("pattern", ["", "dsync user", "dsync.[user", 42])
def test_bad_patterns_are_refused(pattern: Any) -> None:
    with pytest.raises(RegistrationError, match="pattern"):
        Registry().handler(pattern)(lambda e: None)


def test_unknown_options_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="order"):
        Registry().handler("*", order="resource")(lambda e: None)  # type: ignore[call-arg]


def test_duplicate_names_are_refused() -> None:
    registry = Registry()
    registry.handler("*", name="same")(lambda e: None)
    with pytest.raises(RegistrationError, match="already registered"):
        registry.handler("*", name="same")(lambda e: None)


@pytest.mark.parametrize(
    ("order_by", "etype", "data", "key"),
    [
        ("resource", "dsync.user.updated", {"id": "directory_user_1"}, "directory_user_1"),
        ("resource", "dsync.group.user_added", {"group": {"id": "g1"}, "user": {"id": "u1"}}, "membership:g1:u1"),
        ("resource", "dsync.group.user_removed", {"group": {"id": "g1"}, "user": {"id": "u1"}}, "membership:g1:u1"),
        ("resource", "connection.saml_certificate_renewed", {"connection": {"id": "conn_1"}}, "conn_1"),
        ("resource", "dsync.user.updated", {}, "event:event_1"),
        ("directory", "dsync.user.updated", {"id": "u", "directory_id": "directory_1"}, "directory_1"),
        ("directory", "dsync.activated", {"id": "directory_1"}, "directory_1"),
        ("directory", "dsync.deleted", {"id": "directory_1"}, "directory_1"),
        ("organization", "dsync.user.updated", {"organization_id": "org_1"}, "org_1"),
        ("organization", "organization.updated", {"id": "org_2"}, "org_2"),
        ("organization", "connection.saml_certificate_renewed", {"connection": {"organization_id": "org_3"}}, "org_3"),
        ("none", "dsync.user.updated", {"id": "u"}, "event:event_1"),
    ],
)
def test_ordering_keys(order_by: str, etype: str, data: dict[str, Any], key: str) -> None:
    assert key_function(order_by)(make_event(etype, data)) == key


def test_a_callable_order_by_is_used_as_is() -> None:
    registry = Registry()
    spec = registry.register(lambda e: None, ["*"], name="custom", order_by=lambda e: e.data["tenant"])
    assert spec.ordering_key(make_event("dsync.user.updated", {"tenant": "t1"})) == "t1"


def test_discovery_refuses_an_unknown_module_naming_it() -> None:
    settings = Settings.from_env(
        {"REDIS_URL": "redis://x:1/0", "HOOKYARD_HANDLERS": "no.such.module"}, require_secret=False
    )
    with pytest.raises(RegistrationError, match=r"no\.such\.module"):
        load_handlers(settings, Registry())


def test_discovery_imports_setting_modules_and_builtins_into_the_registry() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://x:1/0",
            "HOOKYARD_HANDLERS": "tests.fixtures.ledger_handlers",
            "HOOKYARD_LOG_EVENTS": "true",
        },
        require_secret=False,
    )
    registry = load_handlers(settings)
    names = {h.name for h in registry}
    assert {"hookyard.log_events", "ledger.ordered", "ledger.unordered"} <= names
    assert registry.get("ledger.ordered") is not None


def test_a_module_that_raises_at_import_is_named_once_with_its_traceback(tmp_path: Path) -> None:
    # Given a handler module whose import raises (not an ImportError)
    (tmp_path / "broken_at_import.py").write_text("raise RuntimeError('missing CRM_TOKEN')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "REDIS_URL": "redis://127.0.0.1:1/0",
           "HOOKYARD_HANDLERS": "broken_at_import", "HOOKYARD_ENTRY_POINTS": "false"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "processor"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    # Then the worker exits 2 with one line naming the module and the error, and the traceback once
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert "broken_at_import" in first and "RuntimeError" in first and "missing CRM_TOKEN" in first
    assert result.stderr.count("Traceback (most recent call last)") == 1
