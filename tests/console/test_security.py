"""The console's security rules against a real Redis: actions need the token (bearer, or a session with its CSRF
field, from the console's own origin), read-only without a token, redaction, no secret in any answer, headers."""

from __future__ import annotations

import re

import pytest
import redis
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from processor import deadletters
from processor.console import build_app
from processor.console.guard import COOKIE
from processor.devtools.embedded_redis import free_port
from processor.handlers import Registry
from processor.testing import Harness
from shared.settings import Settings
from tests.conftest import TEST_SECRET
from tests.console.conftest import CONSOLE_TOKEN, ConsoleFactory
from tests.fixtures import cli_state
from tests.fixtures.cli_state import Scenario, envelope

PAGES = ["/", "/events", "/dead-letters", "/dead-letters?kind=skipped", "/login"]


def _dead(client: redis.Redis) -> list[str]:
    return [letter.event_id for letter in deadletters.list_letters(client, "dead")]


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "the page has no CSRF field"
    return match.group(1)


def _sign_in(web: TestClient) -> str:
    """Sign in with the token; returns the CSRF field of the dead-letter page."""
    answer = web.post("/login", data={"token": CONSOLE_TOKEN}, follow_redirects=False)
    assert answer.status_code == 303
    return _csrf(web.get("/dead-letters").text)


def test_without_a_token_the_console_is_read_only(
    console: ConsoleFactory, scenario: Scenario, redis_client: redis.Redis
) -> None:
    # Given a console with no HOOKYARD_CONSOLE_TOKEN, over a store with a dead letter
    web = console()
    # When the pages are read, then they answer, offer no action and say read-only
    for path in PAGES:
        answer = web.get(path)
        assert answer.status_code == 200, path
        assert 'name="csrf"' not in answer.text
    assert "read-only" in web.get("/").text
    # When an action is posted anyway (even with a made-up bearer), then it is refused and nothing changes
    refused = web.post("/dead-letters/replay", data={"all": "yes"}, headers={"Authorization": "Bearer anything"})
    assert refused.status_code == 403
    assert "read-only" in refused.text
    assert web.post("/login", data={"token": "anything"}).status_code == 403
    assert _dead(redis_client) == [scenario.dead]


def test_an_action_needs_the_token(console: ConsoleFactory, scenario: Scenario, redis_client: redis.Redis) -> None:
    # Given a console with a token
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    # When an action comes without it, with a wrong bearer, or after a wrong sign-in, then it is refused
    with capture_logs() as logs:
        assert web.post("/dead-letters/replay", data={"all": "yes"}).status_code == 403
        wrong = {"Authorization": "Bearer " + CONSOLE_TOKEN[:-1] + "x"}
        assert web.post("/dead-letters/replay", data={"all": "yes"}, headers=wrong).status_code == 403
        assert web.post("/login", data={"token": CONSOLE_TOKEN + "x"}).status_code == 403
        assert COOKIE not in web.cookies
        assert _dead(redis_client) == [scenario.dead]
        # When it comes with the right bearer token, then the letter goes back to its queue
        right = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}
        done = web.post("/dead-letters/replay", data={"all": "yes"}, headers=right, follow_redirects=False)
    assert done.status_code == 303
    assert _dead(redis_client) == []
    # And every attempt left an audit line naming the actor, never the token
    audit = [line for line in logs if line["event"] == "console.action"]
    assert [(line["action"], line["outcome"], line["actor"]) for line in audit] == [
        ("replay", "refused", "anonymous"),
        ("replay", "refused", "anonymous"),
        ("sign_in", "refused", "anonymous"),
        ("replay", "started", "bearer"),
        ("replay", "ok", "bearer"),
    ]
    assert audit[-1]["replayed"] == 1
    assert CONSOLE_TOKEN not in repr(logs)


def test_a_session_acts_only_with_its_csrf_field_from_its_own_origin(
    console: ConsoleFactory, scenario: Scenario, redis_client: redis.Redis
) -> None:
    # Given a browser signed in with the token
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    csrf = _sign_in(web)
    assert CONSOLE_TOKEN not in web.cookies[COOKIE]
    # When it posts without the CSRF field, with another session's, or from another origin, then it is refused
    assert web.post("/dead-letters/purge", data={"all": "yes", "confirm": "yes"}).status_code == 403
    other = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    other_csrf = _sign_in(other)
    assert other_csrf != csrf
    forged = {"all": "yes", "confirm": "yes", "csrf": other_csrf}
    assert web.post("/dead-letters/purge", data=forged).status_code == 403
    cross = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    own = {"all": "yes", "confirm": "yes", "csrf": csrf}
    assert web.post("/dead-letters/purge", data=own, headers=cross).status_code == 403
    assert _dead(redis_client) == [scenario.dead]
    # When it posts with its own field from its own page, then the purge happens
    done = web.post(
        "/dead-letters/purge", data=own, headers={"Origin": "http://127.0.0.1:8090"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert _dead(redis_client) == []


def test_a_purge_asks_first(console: ConsoleFactory, scenario: Scenario, redis_client: redis.Redis) -> None:
    # Given a signed-in session
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    csrf = _sign_in(web)
    # When it asks to purge a group without confirming, then it gets a confirmation page and nothing is purged
    asked = web.post("/dead-letters/purge", data={"group": "cli.users|RuntimeError", "csrf": csrf})
    assert asked.status_code == 200
    assert "Purge 1 dead letters for good?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert _dead(redis_client) == [scenario.dead]


def test_chosen_fields_are_redacted(console: ConsoleFactory, yard: Harness) -> None:
    # Given an event with personal data, and a console redacting two of its fields
    body = envelope(
        "event_pii",
        "dsync.user.created",
        1_700_000_000_000,
        {"id": "user_p", "first_name": "Ada", "emails": [{"value": "ada@example.com", "primary": True}]},
    )
    yard.deliver(body)
    yard.step()
    web = console(HOOKYARD_CONSOLE_REDACT="data.first_name,data.emails.value")
    # When its page is read, then neither value is shown, the rest is, and the exact bytes are withheld
    page = web.get("/events/workos/event_pii").text
    assert "Ada" not in page
    assert "ada@example.com" not in page
    assert "[redacted]" in page
    assert "&#34;primary&#34;: true" in page
    assert "Exact bytes received" not in page
    # And without redaction both are there
    assert "ada@example.com" in console().get("/events/workos/event_pii").text


def test_no_secret_or_token_in_any_answer(console: ConsoleFactory, scenario: Scenario) -> None:
    # Given a console with a token and a signing secret configured, signed in
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    _sign_in(web)
    # When every page is read, then neither the secret nor the token appears in a body or a header
    for path in [*PAGES, f"/events/workos/{scenario.dead}", f"/events?id={scenario.done}"]:
        answer = web.get(path)
        assert answer.status_code == 200, path
        for secret in (TEST_SECRET, CONSOLE_TOKEN):
            assert secret not in answer.text
            assert secret not in str(answer.headers)
        assert "signature" not in answer.text.lower()


def test_every_answer_carries_the_security_headers(console: ConsoleFactory, scenario: Scenario) -> None:
    web = console()
    for path in [*PAGES, "/static/console.js", "/events?since=nonsense"]:
        headers = web.get(path).headers
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("since=yesterday-ish", "since: expected an ISO-8601 time"),
        ("status=finished", "status must be one of"),
        ("after=12345", "after: not a cursor"),
    ],
)
def test_bad_input_is_a_400_with_a_reason(console: ConsoleFactory, query: str, reason: str) -> None:
    answer = console().get(f"/events?{query}")
    assert answer.status_code == 400
    assert reason in answer.text


def test_resend_runs_a_handler_again_on_an_event_it_completed(
    console: ConsoleFactory, scenario: Scenario, yard: Harness
) -> None:
    # Given an event every handler completed, and a console with a token
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    right = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}
    before = [d for d in cli_state.DELIVERED if d[:2] == ("cli.users", scenario.done)]
    # When it is resent to one handler without the token, then nothing happens
    assert web.post(f"/events/workos/{scenario.done}/resend", data={"handler": "cli.users"}).status_code == 403
    # When it is resent with the token, then that handler (only) runs it again, as a later attempt
    done = web.post(
        f"/events/workos/{scenario.done}/resend", data={"handler": "cli.users"}, headers=right, follow_redirects=False
    )
    assert done.status_code == 303
    assert "notice=resent" in done.headers["location"]
    yard.run()
    again = [d for d in cli_state.DELIVERED if d[:2] == ("cli.users", scenario.done)]
    assert len(again) == len(before) + 1
    assert again[-1][2] > before[-1][2]
    # And a handler the event was not routed to is refused by name
    other = web.post(f"/events/workos/{scenario.done}/resend", data={"handler": "nobody"}, headers=right)
    assert "notice=not_routed" in str(other.url)


def test_a_redis_that_does_not_answer_is_a_503_that_says_so() -> None:
    # Given a console whose Redis is not running
    url = f"redis://127.0.0.1:{free_port()}/0"
    app = build_app(Settings.from_env({"REDIS_URL": url}, require_secret=False), Registry(), sample=False)
    with TestClient(app, base_url="http://127.0.0.1:8090") as web:
        # When a page is read, then it answers 503 naming the server and what to check, with the usual headers
        answer = web.get("/events")
    assert answer.status_code == 503
    assert f"cannot reach Redis at {url}" in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
