"""HOOKYARD_CONSOLE_REDACT paths: keys, `*`, lists walked through, nothing else touched; bad paths refused."""

from __future__ import annotations

import pytest

from processor.console.redact import REDACTED, redact
from shared.errors import ConfigError
from shared.settings import Settings

ENVELOPE = {
    "id": "event_1",
    "event": "dsync.user.updated",
    "data": {
        "id": "user_1",
        "first_name": "Ada",
        "emails": [{"value": "ada@example.com", "primary": True}, {"value": "a@example.org", "primary": False}],
        "custom_attributes": {"manager_email": "boss@example.com", "department": "R&D"},
    },
}


def test_a_key_path_hides_that_value_only() -> None:
    hidden = redact(ENVELOPE, ["data.first_name"])
    assert hidden["data"]["first_name"] == REDACTED
    assert hidden["data"]["id"] == "user_1"
    assert ENVELOPE["data"]["first_name"] == "Ada"  # the original is left alone


def test_a_key_applied_to_a_list_applies_to_each_element() -> None:
    hidden = redact(ENVELOPE, ["data.emails.value"])
    assert [e["value"] for e in hidden["data"]["emails"]] == [REDACTED, REDACTED]
    assert [e["primary"] for e in hidden["data"]["emails"]] == [True, False]


def test_a_star_matches_every_key_or_element() -> None:
    assert redact(ENVELOPE, ["data.custom_attributes.*"])["data"]["custom_attributes"] == {
        "manager_email": REDACTED,
        "department": REDACTED,
    }
    assert redact(ENVELOPE, ["data.emails.*"])["data"]["emails"] == [REDACTED, REDACTED]
    assert redact(ENVELOPE, ["data.emails"])["data"]["emails"] == REDACTED


def test_a_path_that_matches_nothing_changes_nothing() -> None:
    assert redact(ENVELOPE, ["data.last_name", "data.id.deeper", "nowhere.at.all"]) == ENVELOPE
    assert redact("not json", ["data.id"]) == "not json"


@pytest.mark.parametrize("raw", ["data..emails", "data.emails[0]", ".data", "data.e mail"])
def test_a_path_that_is_not_a_dotted_path_stops_the_console(raw: str) -> None:
    with pytest.raises(ConfigError, match="HOOKYARD_CONSOLE_REDACT"):
        Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "HOOKYARD_CONSOLE_REDACT": raw}, require_secret=False)


def test_a_short_console_token_is_refused() -> None:
    with pytest.raises(ConfigError, match="HOOKYARD_CONSOLE_TOKEN"):
        Settings.from_env(
            {"REDIS_URL": "redis://127.0.0.1:1/0", "HOOKYARD_CONSOLE_TOKEN": "short"}, require_secret=False
        )
