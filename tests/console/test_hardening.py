"""The console against what an adversarial review tried: a rebound DNS name, interrupted replays, purges that
grow after their confirmation, odd input that must be a 400 with a reason (real Redis, Starlette TestClient)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import anyio
import orjson
import pytest
import redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from processor import deadletters
from processor.console import build_app, letter_pages, org_pages
from processor.console.guard import COOKIE, SESSION_MAX_AGE_S, Access, new_session
from processor.devtools.embedded_redis import free_port
from processor.handlers import Registry
from processor.mirror.migrate import upgrade
from processor.mirror.schema import connections, organizations
from processor.mirror.status import mirror_engine
from processor.testing import Harness
from shared.settings import Settings
from tests.console.conftest import CONSOLE_TOKEN, ConsoleFactory
from tests.fixtures import cli_state
from tests.fixtures.cli_state import Scenario, envelope

BEARER = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}


def _dead(client: redis.Redis) -> list[str]:
    return [letter.event_id for letter in deadletters.list_letters(client, "dead")]


def _with_host(web: TestClient, host: str) -> int:
    return web.get("/events", headers={"host": host}).status_code


def test_a_host_the_console_does_not_know_is_refused(console: ConsoleFactory, scenario: Scenario) -> None:
    # Given a console on its default loopback address, and one that also answers to console.example
    web = console()
    named = console(HOOKYARD_CONSOLE_ALLOWED_HOSTS="console.example, *.ops.example")
    # When a page comes with a Host a rebound DNS name would send, then it is refused before any page runs
    answer = web.get(f"/events/workos/{scenario.dead}", headers={"host": "rebind.attacker.example:8090"})
    assert answer.status_code == 400
    assert "user_b" not in answer.text
    assert _with_host(named, "rebind.attacker.example") == 400
    signing_in = {"host": "rebind.attacker.example:8090", "origin": "http://rebind.attacker.example:8090"}
    assert web.post("/login", data={"token": "x" * 20}, headers=signing_in).status_code == 400
    # When it comes with loopback names (any port) or a configured name, then it is served
    for host in ("127.0.0.1:8090", "localhost:8090", "[::1]:8090", "127.0.0.1"):
        assert _with_host(web, host) == 200, host
    assert _with_host(named, "console.example:8090") == 200
    assert _with_host(named, "a.ops.example") == 200
    assert _with_host(web, "console.example") == 400
    # And the ?id= jump is a relative redirect: nothing in it comes from the Host header
    jump = web.get(f"/events?id={scenario.dead}", follow_redirects=False)
    assert jump.status_code == 303
    assert jump.headers["location"] == f"/events/workos/{scenario.dead}"


def test_the_configured_listening_host_is_served(console: ConsoleFactory) -> None:
    # Given a console told to listen on a LAN name
    web = console(HOOKYARD_CONSOLE_HOST="console.lan")
    # When that name comes as the Host, then it is served; another is not
    assert _with_host(web, "console.lan:8090") == 200
    assert _with_host(web, "other.lan:8090") == 400


def _more_dead(yard: Harness, count: int) -> None:
    """`count` more dead letters of cli.users, after the scenario's."""
    for i in range(count):
        cli_state.REFUSED_USERS.add(f"user_more_{i}")
        at = yard.clock.now_ms + i
        yard.deliver(envelope(f"event_more_{i}", "dsync.user.updated", at, {"id": f"user_more_{i}"}))
    yard.run()


def test_a_streamed_replay_left_mid_way_is_audited(
    console: ConsoleFactory, scenario: Scenario, yard: Harness, redis_client: redis.Redis
) -> None:
    # Given three dead letters and a console with a token
    _more_dead(yard, 2)
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    chosen = deadletters.list_letters(redis_client, "dead")
    assert len(chosen) == 3
    bearer = Access(True, True, "bearer", bearer=True)
    stream = letter_pages._progress(web.app.state.console, bearer, "dead", chosen, {"all": True})  # type: ignore[attr-defined]

    async def leave_after_the_first() -> str:
        try:
            return await stream.__anext__()
        finally:
            await stream.aclose()  # what the server does when the client goes away

    # When the client of a streamed replay of all three leaves after the first progress report
    with capture_logs() as logs:
        first = anyio.run(leave_after_the_first)
    # Then one letter was replayed, and the audit says what was selected before, and how far it got after
    assert first.startswith("event: progress")
    assert len(_dead(redis_client)) == 2
    audit = [line for line in logs if line["event"] == "console.action"]
    assert [(line["action"], line["outcome"], line["selected"], line.get("replayed")) for line in audit] == [
        ("replay", "started", 3, None),
        ("replay", "interrupted", 3, 1),
    ]
    assert audit[0]["all"] is True


def _hidden(page: str, name: str) -> list[str]:
    return re.findall(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)


def test_a_purge_deletes_exactly_what_its_confirmation_listed(
    console: ConsoleFactory, scenario: Scenario, yard: Harness, redis_client: redis.Redis
) -> None:
    # Given two dead letters of one group, and a signed-in session asked to confirm purging that group
    _more_dead(yard, 1)
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    web.post("/login", data={"token": CONSOLE_TOKEN})
    csrf = re.findall(r'name="csrf" value="([0-9a-f]+)"', web.get("/dead-letters").text)[0]
    asked = web.post("/dead-letters/purge", data={"group": "cli.users|RuntimeError", "csrf": csrf})
    assert "Purge 2 dead letters for good?" in asked.text
    listed = _hidden(asked.text, "letter")
    assert len(listed) == 2
    # When a third letter of the same group is set aside before the confirmation is sent
    cli_state.REFUSED_USERS.add("user_late")
    yard.deliver(envelope("event_after_confirm", "dsync.user.updated", yard.clock.now_ms, {"id": "user_late"}))
    yard.run()
    assert len(_dead(redis_client)) == 3
    confirm = {"csrf": csrf, "confirm": "yes", "kind": "dead", "letter": listed}
    done = web.post("/dead-letters/purge", data=confirm, follow_redirects=False)
    # Then the two listed letters are gone and the newer one stays
    assert done.status_code == 303
    assert "purged+2+of+2" in done.headers["location"]
    assert _dead(redis_client) == ["event_after_confirm"]


def test_a_redis_password_holding_at_signs_stays_off_the_503_page() -> None:
    # Given a console whose Redis (not running) has a password with '@' in it
    password = "qx7@zz-secret@pw9"
    where = f"127.0.0.1:{free_port()}/0"
    settings = Settings.from_env({"REDIS_URL": f"redis://:{password}@{where}"}, require_secret=False)
    with TestClient(build_app(settings, Registry(), sample=False), base_url="http://127.0.0.1:8090") as web:
        # When a page is read
        answer = web.get("/events")
    # Then the 503 names the server with the password masked, and no piece of the password shows
    assert answer.status_code == 503
    assert f"redis://:****@{where}" in answer.text
    for piece in ("qx7", "zz-secret", "pw9"):
        assert piece not in answer.text.replace(f"redis://:****@{where}", "")


def test_an_organization_search_reads_a_bounded_number_of_rows(
    console: ConsoleFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a mirror of 150 organizations, each with an SSO connection whose domains are kept as JSON
    url = f"sqlite:///{tmp_path}/mirror.db"
    engine = mirror_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            organizations.insert(), [{"id": f"org_{i:04d}", "name": f"Acme {i}", "version": "1"} for i in range(150)]
        )
        conn.execute(
            connections.insert(),
            [
                {
                    "id": f"conn_{i:04d}",
                    "organization_id": f"org_{i:04d}",
                    "connection_type": "OktaSAML",
                    "state": "active",
                    "domains": [{"domain": f"acme{i}.example", "state": "verified"}],
                    "version": "1",
                }
                for i in range(150)
            ],
        )
    engine.dispose()
    monkeypatch.setattr(org_pages, "SCAN_LIMIT", 60)
    web = console(HOOKYARD_MIRROR_URL=url)
    # When a search matches the JSON text of every row but no organization ("verified" is no domain)
    answer = web.get("/organizations?search=verified")
    # Then the page reads at most the bound, shows nothing, and offers to go on from where it stopped
    assert answer.status_code == 200
    assert 'scope="row"' not in answer.text
    assert "after=org_0059" in answer.text
    # When the search is JSON punctuation, then no row matches (it is no id, name or domain), and none is read
    quote = web.get('/organizations?search="')
    assert quote.status_code == 200
    assert 'scope="row"' not in quote.text
    assert "after=" not in quote.text
    # And a domain kept in a connection's JSON is still found
    assert "org_0123" in web.get("/organizations?search=acme123.example").text


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("after=%C2%B2:a:b", "after: not a cursor"),  # '²' is a digit to str.isdigit, not to int()
        ("after=" + "9" * 4400 + ":a:b", "after: not a cursor"),  # more digits than int() parses
        ("since=" + "9" * 400 + "s", "since: longer than 10,000 years"),  # a float overflow
        ("until=" + "9" * 300 + "d", "until: longer than 10,000 years"),
    ],
)
def test_odd_query_values_are_a_400_with_a_reason(console: ConsoleFactory, query: str, reason: str) -> None:
    answer = console().get(f"/events?{query}")
    assert answer.status_code == 400
    assert reason in answer.text


def test_a_cookie_or_csrf_field_in_any_text_is_refused_not_a_crash(
    console: ConsoleFactory, scenario: Scenario, redis_client: redis.Redis
) -> None:
    # Given a console with a token
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    # When the session cookie is not ASCII, then the page is read as signed out
    cookie = "hookyard_console=\u00e9\u00e9.\u00e9\u00e9".encode("latin-1")
    odd = web.get("/dead-letters", headers=[(b"cookie", cookie)])
    assert odd.status_code == 200
    assert 'name="csrf"' not in odd.text
    # When a signed-in session posts a CSRF field that is not ASCII, then the action is refused
    web.post("/login", data={"token": CONSOLE_TOKEN})
    refused = web.post("/dead-letters/replay", data={"csrf": "\u00e9", "all": "yes"})
    assert refused.status_code == 403
    assert "CSRF field" in refused.text
    assert _dead(redis_client) == [scenario.dead]


def test_an_event_id_with_a_slash_links_to_its_page(console: ConsoleFactory, yard: Harness) -> None:
    # Given a dead letter whose event id holds '/', '?' and '#'
    cli_state.REFUSED_USERS.add("user_slash")
    odd_id = "evt/with?odd#id"
    yard.deliver(envelope(odd_id, "dsync.user.updated", yard.clock.now_ms, {"id": "user_slash"}))
    yard.run()
    web = console()
    # When the dead-letter page is read, then it links to the event's page with every odd character escaped
    letters = web.get("/dead-letters")
    assert letters.status_code == 200
    href = "/events/workos/evt%2Fwith%3Fodd%23id"
    assert f'href="{href}"' in letters.text
    # And that link, the events list and the ?id= jump all reach the event
    assert "user_slash" in web.get(href).text
    assert f'href="{href}"' in web.get("/events").text
    jump = web.get("/events", params={"id": odd_id}, follow_redirects=False)
    assert jump.headers["location"] == href


def test_an_event_nested_too_deep_to_indent_is_shown_without_a_crash(console: ConsoleFactory, yard: Harness) -> None:
    # Given an event whose body nests 300 levels (orjson writes at most 254)
    body = orjson.dumps(envelope("event_deep", "connection.activated", yard.clock.now_ms, {"x": "DEEP"}))
    yard.deliver(body.replace(b'"DEEP"', b"[" * 300 + b'"bottom"' + b"]" * 300))
    yard.run()
    # When its page is read, then it says so, and still offers the exact bytes
    answer = console().get("/events/workos/event_deep")
    assert answer.status_code == 200
    assert "too deeply nested to display" in answer.text
    assert "Exact bytes received" in answer.text
    # And with a redaction set, the exact bytes are withheld as always
    redacted = console(HOOKYARD_CONSOLE_REDACT="data.id").get("/events/workos/event_deep")
    assert redacted.status_code == 200
    assert "Exact bytes received" not in redacted.text
    assert "bottom" not in redacted.text


def test_a_500_carries_the_security_headers(console: ConsoleFactory) -> None:
    # Given the console's app with one page that fails unexpectedly
    app = console().app

    def broken(request: Request) -> Response:
        raise RuntimeError("an unexpected failure")

    app.router.routes.append(Route("/broken", broken))  # type: ignore[attr-defined]
    # When it is read, then the 500 carries the same headers as every other answer
    with TestClient(app, base_url="http://127.0.0.1:8090", raise_server_exceptions=False) as web:
        answer = web.get("/broken")
    assert answer.status_code == 500
    assert answer.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_filters_that_would_reveal_a_redacted_field_are_refused(console: ConsoleFactory, scenario: Scenario) -> None:
    # Given a console hiding the organization and the ids of event bodies
    web = console(HOOKYARD_CONSOLE_REDACT="data.organization_id,data.id")
    # When the events are filtered by those values, then the console refuses: a match would tell the value
    for name in ("organization", "resource"):
        answer = web.get(f"/events?{name}=org_guess")
        assert answer.status_code == 400
        assert f"{name}: not while HOOKYARD_CONSOLE_REDACT hides" in answer.text
    # And with other fields hidden, the filters work
    assert console(HOOKYARD_CONSOLE_REDACT="data.first_name").get("/events?resource=user_b").status_code == 200


def test_signing_out_from_another_origin_is_refused(console: ConsoleFactory, scenario: Scenario) -> None:
    # Given a signed-in session
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    web.post("/login", data={"token": CONSOLE_TOKEN})
    # When another site posts to /logout, then it is refused and the session stays
    cross = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert web.post("/logout", headers=cross, follow_redirects=False).status_code == 403
    assert 'name="csrf"' in web.get("/dead-letters").text
    # When the console's own page signs out, then the cookie goes
    own = web.post("/logout", headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert own.status_code == 303
    assert 'name="csrf"' not in web.get("/dead-letters").text


def test_a_session_ends_after_its_maximum_age(console: ConsoleFactory, scenario: Scenario) -> None:
    # Given a cookie the console signed when its holder signed in, longer ago than a session lasts
    web = console(HOOKYARD_CONSOLE_TOKEN=CONSOLE_TOKEN)
    issued = int(time.time()) - SESSION_MAX_AGE_S - 60
    web.cookies.set(COOKIE, new_session(CONSOLE_TOKEN.encode(), issued_s=issued))
    # When a page is read with it, then it counts as signed out
    assert 'name="csrf"' not in web.get("/dead-letters").text
    # And a cookie signed a minute ago is a session
    web.cookies.set(COOKIE, new_session(CONSOLE_TOKEN.encode(), issued_s=int(time.time()) - 60))
    assert 'name="csrf"' in web.get("/dead-letters").text
