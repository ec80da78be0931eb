"""The console in a real headless Chromium (Debian's, driven by Playwright) against a live stack: receiver,
workers and the console as real processes over the suite's Redis, a SQLite mirror. The pages render real data,
search finds an event, a replay from the page runs the handler again (its own ledger says so), a purge asks
first, actions without the token are refused, every request stays on the console's origin, and the basics of
accessibility hold. Each page's screenshot is taken; `make screenshots` writes them to docs/console/."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from processor import deadletters
from processor.devtools.embedded_redis import EmbeddedRedis
from shared import keys
from tests.console.stack import ORG, Stack, setup_events, user_event
from tests.fixtures.console_handlers import LEDGER, REFUSED
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
# Every run takes the screenshots; `make screenshots` (CONSOLE_SCREENSHOTS=docs/console) writes them where
# docs/console.md shows them, any other run beside the build files, so `make test` leaves the tree unchanged.
SHOTS = ROOT / os.environ.get("CONSOLE_SCREENSHOTS", ".hookyard/screenshots")
REFUSED_USER = "directory_user_01BOB"


def _chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    problem = "/usr/bin/chromium is missing: install Debian's `chromium` package (`make tools` does as root)"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{problem}; CI runs the browser tests", pytrace=False)
    pytest.skip(f"!!! CONSOLE BROWSER TESTS NOT RUN: {problem} !!!")


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One live stack for the module, with an organization, two users, and one dead letter (a refused user)."""
    executable = _chromium()
    assert executable
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.sadd(REFUSED, REFUSED_USER)
    running = Stack(redis_server.url, tmp_path_factory.mktemp("console"), TOKEN)
    running.start()
    try:
        for envelope in setup_events():
            running.send(envelope)
        wait_for(lambda: _dead(client), 30, "the refused user's event to be dead-lettered")
        wait_for(lambda: _ledger(client).count("console.audit") >= 4, 30, "every event to reach console.audit")
        yield running
    finally:
        codes = running.stop()
        client.close()
    assert codes == [0, 0]


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


class Session:
    """A browser context on the console that records every request it makes."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.origin = origin
        self.context = browser.new_context(base_url=origin, viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(10_000)
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()

    def other_origins(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.origin + "/")]

    def sign_in(self) -> None:
        self.page.goto("/login")
        self.page.get_by_label("Console token").fill(TOKEN)
        with self.page.expect_navigation():
            self.page.get_by_role("button", name="Sign in").click()
        assert self.page.url == self.origin + "/"


@pytest.fixture
def session(browser: Any, stack: Stack) -> Iterator[Session]:
    opened = Session(browser, stack.console_url)
    yield opened
    opened.context.close()
    # No request of the test went anywhere but the console (no CDN, no font, no analytics)
    assert opened.requests
    assert opened.other_origins() == []


@pytest.fixture(scope="module")
def client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    found = redis.Redis.from_url(redis_server.url)
    yield found
    found.close()


def _dead(client: redis.Redis) -> list[str]:
    return [letter.event_id for letter in deadletters.list_letters(client, "dead")]


def _ledger(client: redis.Redis) -> list[str]:
    return [line.decode().split("|")[0] for line in client.lrange(LEDGER, 0, -1)]


def _calls(client: redis.Redis, handler: str, event_id: str) -> list[int]:
    rows = [line.decode().split("|") for line in client.lrange(LEDGER, 0, -1)]
    return [int(attempt) for name, eid, attempt in rows if name == handler and eid == event_id]


def _shot(session: Session, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    session.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_pages_show_the_live_stack(session: Session, stack: Stack, client: redis.Redis) -> None:
    page = session.page
    # Given the running stack with a little traffic spread over a few of the console's sampling intervals
    for i in range(3):
        points = client.llen(keys.CONSOLE_HISTORY)
        stack.send(user_event(f"event_01CONSOLE_TRAFFIC_{i}", f"directory_user_01T{i}"))
        wait_for(lambda points=points: client.llen(keys.CONSOLE_HISTORY) > points, 10, "the console to sample")
    session.sign_in()
    # When the overview is opened, then it shows each handler, the live workers with their handler sets, and
    # charts of the history the console recorded
    page.goto("/")
    handlers = page.locator("#handlers")
    assert "console.directory" in handlers.inner_text()
    assert "console.audit" in handlers.inner_text()
    assert "console.directory" in page.locator("#workers").inner_text()

    def charted() -> bool:
        page.reload()
        return page.locator("svg polyline").count() >= 3

    wait_for(charted, 20, "the overview's charts to have lines")
    _shot(session, "overview")
    # When the events page is open and a new event arrives, then it appears at the top without a reload
    page.goto("/events")
    assert page.locator("#events tbody tr").count() >= 4
    stack.send(user_event("event_01CONSOLE_USER_CY", "directory_user_01CY"))
    page.locator("#events tbody tr", has_text="event_01CONSOLE_USER_CY").wait_for(timeout=15_000)
    assert "event_01CONSOLE_USER_CY" in page.locator("#events tbody tr").first.inner_text()
    _shot(session, "events")
    # When an event is opened, then its body, its times and each handler's status and ordering key are there
    page.goto("/events/workos/event_01CONSOLE_USER_ADA")
    assert '"directory_user_01ADA"' in page.locator("#body-json").inner_text()
    statuses = page.locator("#handler-statuses").inner_text()
    assert "console.directory" in statuses
    assert "done" in statuses
    assert "directory_user_01ADA" in statuses  # its ordering key (per user)
    for fact in ("Issued", "Signed", "Received"):
        assert page.locator("dt", has_text=fact).count() == 1
    _shot(session, "event")
    # And the dead letter is grouped under its handler and error, with its traceback
    page.goto("/dead-letters")
    group = page.locator("section.group", has_text="console.directory")
    assert "RuntimeError" in group.inner_text()
    assert "directory service refused user directory_user_01BOB" in group.locator("pre.trace").text_content()
    assert group.get_by_role("button", name="Replay group (1)").count() == 1
    group.locator("summary", has_text="Traceback").click()
    _shot(session, "dead-letters")
    # And the organization from the mirror shows its SSO and directory state
    page.goto("/organizations")
    row = page.locator("#organizations tbody tr", has_text=ORG)
    wait_for(lambda: (page.reload() or True) and row.count() == 1, 20, "the mirror to have the organization")
    text = row.inner_text()
    assert "active" in text
    assert "OktaSAML" in text
    _shot(session, "organizations")


def test_search_finds_an_event(session: Session) -> None:
    page = session.page
    # Given the events page, when an event id is searched for, then its page opens
    page.goto("/events")
    page.get_by_label("Event id").fill("event_01CONSOLE_USER_ADA")
    page.get_by_label("Event id").press("Enter")
    page.wait_for_url("**/events/workos/event_01CONSOLE_USER_ADA")
    # When events are narrowed by type and organization, then only those are listed
    page.goto("/events")
    page.get_by_label("Type").fill("connection.*")
    page.get_by_label("Organization id").fill(ORG)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/events?**")
    rows = page.locator("#events tbody tr")
    assert rows.count() == 1
    assert "connection.activated" in rows.first.inner_text()


def test_actions_need_the_token_and_a_replay_runs_the_handler_again(
    session: Session, stack: Stack, client: redis.Redis
) -> None:
    page = session.page
    [dead] = _dead(client)
    # Given a visitor who has not signed in: the page offers no action, and a forged post is refused
    page.goto("/dead-letters")
    assert page.get_by_role("button", name="Replay group (1)").count() == 0
    refused = page.request.post(stack.console_url + "/dead-letters/replay", form={"all": "yes"})
    assert refused.status == 403
    assert _dead(client) == [dead]
    # When the operator fixes the cause, signs in and replays the group using only the keyboard
    client.srem(REFUSED, REFUSED_USER)
    session.sign_in()
    page.goto("/dead-letters")
    replay = page.get_by_role("button", name="Replay group (1)")
    for _ in range(60):
        page.keyboard.press("Tab")
        if replay.evaluate("button => button === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the replay button")
    page.keyboard.press("Enter")
    page.locator(".notice", has_text="replayed 1 of 1").wait_for()
    # Then the handler runs the event again (its own ledger), as a later attempt
    wait_for(lambda: _calls(client, "console.directory", dead), 20, "the replayed event to run")
    assert _calls(client, "console.directory", dead) == [2]
    assert _dead(client) == []


def test_a_purge_asks_first(session: Session, stack: Stack, client: redis.Redis) -> None:
    page = session.page
    # Given a second dead letter
    client.sadd(REFUSED, "directory_user_01DEE")
    stack.send(user_event("event_01CONSOLE_USER_DEE", "directory_user_01DEE"))
    wait_for(lambda: "event_01CONSOLE_USER_DEE" in _dead(client), 20, "a second dead letter")
    session.sign_in()
    # When it is selected and purged, then the console asks first and nothing is gone yet
    page.goto("/dead-letters")
    page.get_by_label("Select event_01CONSOLE_USER_DEE").check()
    page.get_by_role("button", name="Purge selected…").click()
    page.get_by_role("heading", name="Purge 1 dead letters for good?").wait_for()
    assert "event_01CONSOLE_USER_DEE" in _dead(client)
    # When the purge is confirmed, then the letter is gone
    page.get_by_role("button", name="Yes, purge 1").click()
    page.locator(".notice", has_text="purged 1 of 1").wait_for()
    assert "event_01CONSOLE_USER_DEE" not in _dead(client)


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _rgb(css: str) -> tuple[float, float, float]:
    parts = css[css.index("(") + 1 : css.index(")")].split(",")
    return float(parts[0]), float(parts[1]), float(parts[2])


def test_accessibility_basics(session: Session) -> None:
    page = session.page
    session.sign_in()
    # Every input on every page has a label (its own <label>, or an aria-label)
    for path in ("/", "/events", "/dead-letters", "/organizations", "/login"):
        page.goto(path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                .filter(el => el.type !== 'hidden')
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                .map(el => el.name || el.id)"""
        )
        assert unlabelled == [], path
    # Every status colour, as the stylesheet renders it, has a contrast of at least 4.5:1 with its background
    page.goto("/")
    statuses = ["done", "pending", "running", "dead", "skipped", "unknown", "active", "inactive", "validating"]
    colours = page.evaluate(
        """(names) => names.map(name => {
            const span = document.createElement('span');
            span.className = 'status status-' + name;
            span.textContent = name;
            document.body.appendChild(span);
            const style = getComputedStyle(span);
            return [name, style.color, style.backgroundColor];
        })""",
        statuses,
    )
    for name, fg, bg in colours:
        lighter, darker = sorted((_luminance(_rgb(fg)), _luminance(_rgb(bg))), reverse=True)
        ratio = (lighter + 0.05) / (darker + 0.05)
        assert ratio >= 4.5, (name, fg, bg, ratio)
    # The skip link is the first stop of the keyboard and leads to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_the_browser_is_debians_chromium(browser: Any) -> None:
    # The browser under test is the system's Chromium (its version is the package's), never a downloaded one
    installed = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=True).stdout
    assert browser.version in installed
