"""`hookyard events list|show` on real state: received events newest first, filtered; one event with its status per
handler — done, dead, skipped (late), pending, and unknown for a handler that cannot be loaded here."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import orjson
import pytest

from processor import Registry
from processor.cli import event_index, events, main
from processor.testing import Harness
from shared import keys
from tests.fixtures import cli_state
from tests.fixtures.cli_state import Scenario


def table(out: str) -> list[list[str]]:
    """Rows of a rendered table (header first), split on runs of two or more spaces."""
    return [re.split(r" {2,}", line.strip()) for line in out.strip().splitlines()]


# --- list -----------------------------------------------------------------------------------------------------


def test_list_shows_every_event_newest_first(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "list"]) == 0

    header, *rows = table(capsys.readouterr().out)
    assert header == ["RECEIVED", "AGE", "TYPE", "EVENT ID", "SOURCE", "ISSUED", "HANDLERS"]
    ids = [row[3] for row in rows]
    # The pending one arrived last, the late one before it; the first four arrived together (ties: greater id first)
    assert ids == [scenario.pending, scenario.late, scenario.connection, scenario.newer, scenario.dead, scenario.done]
    by_id = {row[3]: row for row in rows}
    assert by_id[scenario.dead][2] == "dsync.user.updated"
    assert by_id[scenario.dead][6] == "cli.users,cli.strict,cli.audit"
    assert by_id[scenario.connection][6] == "cli.audit"


def test_list_json(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "list", "--json"]) == 0

    events = orjson.loads(capsys.readouterr().out)["events"]
    assert len(events) == 6
    [late] = [e for e in events if e["event_id"] == scenario.late]
    assert late["source"] == "workos"
    assert late["type"] == "dsync.user.updated"
    assert late["handlers"] == ["cli.users", "cli.strict", "cli.audit"]
    assert late["received_at"] > late["issued_at"]
    assert events[0]["received_at"] >= events[-1]["received_at"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--type", "dsync.user.*"], {"done", "dead", "newer", "late", "pending"}),
        (["--type", "connection.activated"], {"connection"}),
        (["--limit", "2"], {"pending", "late"}),
        (["--source", "workos-staging"], set()),
        (["--since", "1h"], {"done", "dead", "newer", "late", "pending", "connection"}),
        (["--since", "2m"], set()),
        (["--until", "9m"], {"done", "dead", "newer", "connection"}),
        (["--resource", "user_c"], {"newer", "late"}),
        (["--resource", "conn_1"], {"connection"}),
        (["--resource", "user_c", "--type", "dsync.user.created"], set()),
        (["--handler", "cli.strict"], {"done", "dead", "newer", "late", "pending"}),
        (["--handler", "cli.audit"], {"done", "dead", "newer", "late", "pending", "connection"}),
        (["--status", "dead"], {"dead"}),
        (["--status", "skipped", "--handler", "cli.strict"], {"late"}),
        (["--status", "skipped", "--handler", "cli.users"], set()),
        (["--status", "pending", "--handler", "cli.users"], {"pending"}),
        (["--status", "done", "--handler", "cli.users"], {"done", "newer", "late"}),
        (["--status", "pending", "--handler", "cli.audit"], set()),
    ],
)
def test_list_filters(
    argv: list[str], expected: set[str], scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    names = {getattr(scenario, name): name for name in ("done", "dead", "newer", "late", "pending", "connection")}

    assert main(["events", "list", "--json", *argv]) == 0

    found = {names[e["event_id"]] for e in orjson.loads(capsys.readouterr().out)["events"]}
    assert found == expected


def test_list_json_with_a_status_filter_has_every_handlers_status(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", "list", "--json", "--status", "skipped"]) == 0

    [late] = orjson.loads(capsys.readouterr().out)["events"]
    assert late["event_id"] == scenario.late
    assert late["statuses"] == {"cli.users": "done", "cli.strict": "skipped", "cli.audit": "done"}


HARNESS_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


# --- list --follow ----------------------------------------------------------------------------------------------


def ours(out: str) -> str:
    """What the CLI printed, without the log lines of the harness delivering events meanwhile."""
    return "\n".join(line for line in out.splitlines() if not HARNESS_LOG_LINE.match(line))


def arriving(yard: Harness, *events: tuple[str, str, str]) -> Callable[[], None]:
    """A stand-in for the pause between looks: `events` (id, type, resource) arrive during the first pause,
    nothing during the second, and Ctrl-C ends the third."""
    looks = 0

    def pause() -> None:
        nonlocal looks
        looks += 1
        if looks == 1:
            yard.clock.set(int(time.time() * 1000))  # received now, as --follow looks at the last seconds
            for event_id, event_type, resource in events:
                yard.deliver(cli_state.envelope(event_id, event_type, yard.clock(), {"id": resource}))
            yard.step()
        elif looks > 2:
            raise KeyboardInterrupt

    return pause


def test_follow_prints_the_last_events_then_new_ones_as_json_lines(
    yard: Harness, scenario: Scenario, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    monkeypatch.setattr(events, "_wait_for_more", arriving(yard, ("event_07_new", "dsync.user.created", "user_e")))

    assert main(["events", "list", "--follow", "--json", "--limit", "2"]) == 0

    lines = [orjson.loads(line) for line in ours(capsys.readouterr().out).splitlines()]
    assert [line["event_id"] for line in lines] == [scenario.late, scenario.pending, "event_07_new"]
    assert lines[-1]["handlers"] == ["cli.users", "cli.strict", "cli.audit"]


def test_follow_filters_what_arrives(
    yard: Harness, scenario: Scenario, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    arrivals = [
        ("event_07_user", "dsync.user.updated", "user_e"),
        ("event_08_conn", "connection.activated", "conn_2"),
        ("event_09_user", "dsync.user.deleted", "user_f"),
    ]
    capsys.readouterr()
    monkeypatch.setattr(events, "_wait_for_more", arriving(yard, *arrivals))

    assert main(["events", "list", "--follow", "--type", "dsync.user.*", "--since", "1m"]) == 0

    header, *rows = table(ours(capsys.readouterr().out))
    assert header == ["RECEIVED", "TYPE", "EVENT ID", "SOURCE", "HANDLERS"]
    assert [row[2] for row in rows] == ["event_07_user", "event_09_user"]
    assert rows[0][1:] == ["dsync.user.updated", "event_07_user", "workos", "cli.users,cli.strict,cli.audit"]


def test_list_of_nothing(yard: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "list"]) == 0
    assert capsys.readouterr().out == "no events\n"


def test_list_reads_past_the_first_page_of_every_shard(
    yard: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given index pages of 3 and many times more events than the first pages of all shards hold together
    monkeypatch.setattr(event_index, "_PAGE", 3)
    for i in range(120):
        yard.deliver(cli_state.envelope(f"event_bulk_{i:04d}", "connection.activated", yard.clock(), {"id": "c"}))
        yard.clock.advance(0.001)
    yard.step()
    capsys.readouterr()  # the harness's log lines

    assert main(["events", "list", "--json", "--limit", "110"]) == 0

    ids = [e["event_id"] for e in orjson.loads(capsys.readouterr().out)["events"]]
    assert ids == [f"event_bulk_{i:04d}" for i in range(119, 9, -1)]


# --- show -----------------------------------------------------------------------------------------------------


def statuses(out: str) -> dict[str, list[str]]:
    rows = table(out.split("\n\n")[1])
    return {row[0]: row for row in rows[1:]}


def test_show_a_pending_event(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "show", scenario.pending]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"event     {scenario.pending}  (dsync.user.deleted, ")
    assert "\nsource    workos\n" in out
    found = statuses(out)
    assert found["cli.users"][1:4] == ["pending", "user_d", keys.pair_id("cli.users", "workos", "user_d")]
    assert found["cli.users"][4] == "0"
    assert found["cli.users"][5].startswith("runnable for ")
    assert found["cli.strict"][1] == "pending"
    assert found["cli.audit"][1:3] == ["done", f"event:{scenario.pending}"]
    # The envelope, pretty-printed, comes last
    envelope = orjson.loads(out.split("\n\n")[2])
    assert envelope["id"] == scenario.pending
    assert envelope["data"] == {"id": "user_d"}


def test_show_a_dead_and_a_skipped_event(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "show", scenario.dead]) == 0
    dead = statuses(capsys.readouterr().out)
    assert main(["events", "show", scenario.late]) == 0
    late = statuses(capsys.readouterr().out)

    assert dead["cli.users"][1:5] == ["dead", "user_b", keys.pair_id("cli.users", "workos", "user_b"), "2"]
    assert dead["cli.users"][5].startswith("RuntimeError: directory service refused user user_b")
    assert dead["cli.strict"][1] == "done"
    assert late["cli.strict"][1] == "skipped"
    assert late["cli.strict"][5] == "LateEvent: skipped: issued before a delivered event"
    assert late["cli.users"][1] == "done"  # delivered, late


def test_show_json(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "show", scenario.dead, "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert document["event_id"] == scenario.dead
    assert document["source"] == "workos"
    assert document["type"] == "dsync.user.updated"
    assert document["envelope"]["data"] == {"id": "user_b"}
    by_handler = {h["handler"]: h for h in document["handlers"]}
    assert list(by_handler) == ["cli.users", "cli.strict", "cli.audit"]
    users = by_handler["cli.users"]
    assert users["status"] == "dead"
    assert users["ordering_key"] == "user_b"
    assert users["pair"] == keys.pair_id("cli.users", "workos", "user_b")
    assert users["attempts"] == 2
    assert users["error"] == {"type": "RuntimeError", "message": "directory service refused user user_b"}
    assert users["first_failure"] <= users["last_failure"] == users["set_aside_at"]
    assert by_handler["cli.audit"]["status"] == "done"


def test_show_pending_with_a_failed_attempt(yard: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an event whose first attempt failed and whose retry is not due yet
    cli_state.REFUSED_USERS.clear()
    cli_state.REFUSED_USERS.add("user_z")
    yard.deliver(cli_state.envelope("event_retrying", "dsync.user.updated", yard.clock() - 1000, {"id": "user_z"}))
    yard.step()  # admitted: the hold-back window starts
    yard.clock.advance(5)
    yard.step()
    capsys.readouterr()  # the harness's log lines

    assert main(["events", "show", "event_retrying", "--json"]) == 0

    [users] = [h for h in orjson.loads(capsys.readouterr().out)["handlers"] if h["handler"] == "cli.users"]
    assert users["status"] == "pending"
    assert users["attempts"] == 1
    assert users["first_failure"] == users["last_failure"] is not None
    assert users["not_before"] > users["last_failure"]
    assert users["replay"] is False


def test_a_handler_that_cannot_be_loaded_here_is_found_by_the_recorded_routes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given handlers registered only inside this test (no module the CLI could import): one failed for good
    cli_state.use_environment(monkeypatch, REDIS_URL=redis_url)
    private = Registry()

    def broken(event: object) -> None:
        raise ValueError("always")

    private.register(broken, ["dsync.*"], name="elsewhere.broken", max_attempts=1)
    private.register(lambda event: None, ["dsync.*"], name="elsewhere.fine")
    with Harness(private, redis_url=redis_url) as yard:
        yard.deliver(cli_state.envelope("event_elsewhere", "dsync.deleted", yard.clock(), {"id": "dir_1"}))
        yard.run()
    capsys.readouterr()  # the harness's log lines

    assert main(["events", "show", "event_elsewhere"]) == 0

    found = statuses(capsys.readouterr().out)
    assert found["elsewhere.broken"][1:3] == ["dead", "dir_1"]
    assert found["elsewhere.fine"][1:3] == ["done", "dir_1"]


def test_show_raw_prints_the_exact_bytes(scenario: Scenario, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["events", "show", scenario.connection, "--raw"]) == 0

    raw = capsysbinary.readouterr().out
    assert orjson.loads(raw)["id"] == scenario.connection
    assert not raw.endswith(b"\n")


def test_show_an_unknown_event_is_one_line(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "show", "event_nope"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "hookyard events: no event 'event_nope' in the archive of workos; it may be past HOOKYARD_RETENTION\n"
    )
