"""`hookyard events resend` on real state: a handler runs completed events again, in key order, with its attempts
counted on; pending events, letters and events past retention are left alone, and a dry run changes nothing."""

from __future__ import annotations

import orjson
import pytest

from processor.cli import main
from processor.records import PairState
from processor.testing import Harness
from shared import keys
from tests.fixtures import cli_state
from tests.fixtures.cli_state import DELIVERED, REFUSED_USERS, Scenario


def calls_of(handler: str) -> list[tuple[str, int]]:
    return [(event_id, attempt) for name, event_id, attempt, _ in DELIVERED if name == handler]


def test_resend_runs_completed_events_again_in_key_order_counting_attempts_on(
    yard: Harness, scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the scenario settled (its pending event run too), and nothing delivered since
    yard.run()
    DELIVERED.clear()

    # When cli.users' user events are resent
    assert main(["events", "resend", "--handler", "cli.users", "--type", "dsync.user.*"]) == 0

    out = capsys.readouterr().out
    assert "resent 4 events to cli.users" in out
    assert "1 not resent: a dead letter" in out
    # Then only cli.users runs them, each with its second attempt, user_c's in issued order (late before newer)
    yard.run()
    calls = calls_of("cli.users")
    assert sorted(calls) == sorted([(scenario.done, 2), (scenario.newer, 2), (scenario.late, 2), (scenario.pending, 2)])
    user_c = [event_id for event_id, _ in calls if event_id in (scenario.late, scenario.newer)]
    assert user_c == [scenario.late, scenario.newer]
    assert {name for name, *_ in DELIVERED} == {"cli.users"}


def test_resend_counts_on_from_the_attempt_that_completed(
    yard: Harness, scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event cli.users completed on its second attempt (the first failed)
    yard.run()
    REFUSED_USERS.add("user_e")
    yard.deliver(cli_state.envelope("event_07_retried", "dsync.user.created", yard.clock() + 1, {"id": "user_e"}))
    yard.step()
    archived = yard.store.archive.get("workos", "event_07_retried")
    assert archived is not None
    assert archived.routes is not None
    [target] = [t for t in archived.routes if t.handler == "cli.users"]
    state_key = keys.pair_keys(target.shard, target.pair_id).state
    for _ in range(100):  # harness time, a quarter second at a time: the retry comes 0.5 s after the failure
        yard.advance(0.25)
        state = PairState.parse(yard.client.hget(state_key, "event_07_retried"))
        if state is not None and state.attempts == 1:
            break
    REFUSED_USERS.discard("user_e")
    yard.run()
    assert calls_of("cli.users")[-1] == ("event_07_retried", 2)
    DELIVERED.clear()

    # When it is resent
    assert main(["events", "resend", "--handler", "cli.users", "event_07_retried"]) == 0
    yard.run()

    # Then its call is attempt 3, and it can be resent again after that
    assert calls_of("cli.users") == [("event_07_retried", 3)]
    assert main(["events", "resend", "--handler", "cli.users", "event_07_retried"]) == 0
    yard.run()
    assert calls_of("cli.users") == [("event_07_retried", 3), ("event_07_retried", 4)]
    capsys.readouterr()


def test_resend_leaves_pending_events_and_letters_alone_and_says_why(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [scenario.pending, scenario.dead, scenario.connection]

    assert main(["events", "resend", "--handler", "cli.users", "--json", *ids]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert document["resent"] == []
    reasons = {row["event_id"]: row["reason"] for row in document["not_resent"]}
    assert reasons[scenario.pending].startswith("not completed yet")
    assert reasons[scenario.dead].startswith("a dead letter")
    assert reasons[scenario.connection] == "not routed to this handler"


def test_resend_of_an_event_past_retention_says_so_and_exits_1(
    yard: Harness, scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    yard.client.delete(keys.event_keys("workos", scenario.done).archive)

    assert main(["events", "resend", "--handler", "cli.users", scenario.done, scenario.newer]) == 1

    captured = capsys.readouterr()
    assert "resent 1 events to cli.users" in captured.out
    assert f"1 not resent: past HOOKYARD_RETENTION: its bytes are gone, it cannot be resent ({scenario.done})" in (
        captured.err
    )


def test_resend_dry_run_changes_nothing(yard: Harness, scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    yard.run()
    DELIVERED.clear()

    assert main(["events", "resend", "--handler", "cli.users", "--resource", "user_c", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "would resend 2 events to cli.users; dry run, nothing changed" in out
    assert out.index(scenario.late) < out.index(scenario.newer)  # issued order
    yard.run()
    assert DELIVERED == []


def test_resend_needs_a_selection(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["events", "resend", "--handler", "cli.users"])
    assert "choose what to resend" in capsys.readouterr().err
