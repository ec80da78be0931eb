"""`hookyard dlq list|show|replay|purge` on real dead letters and skipped late events: a replay really puts the event
back (the Harness then delivers it), a purge needs a yes, and nothing is changed by a dry run."""

from __future__ import annotations

import io
import re

import orjson
import pytest

from processor.cli import main
from processor.testing import Harness
from tests.fixtures import cli_state
from tests.fixtures.cli_state import Scenario


@pytest.fixture
def scenario(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> Scenario:
    capsys.readouterr()  # the harness's log lines, before the verbs under test print
    return scenario


def table(out: str) -> list[list[str]]:
    return [re.split(r" {2,}", line.strip()) for line in out.strip().splitlines()]


class Terminal(io.StringIO):
    """Stands in for stdin on a terminal, where a person types `answer`."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)

    def isatty(self) -> bool:
        return True


# --- list / show ----------------------------------------------------------------------------------------------


def test_list_shows_the_dead_letter(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list"]) == 0

    header, *rows = table(capsys.readouterr().out)
    assert header == ["DIED", "AGE", "HANDLER", "EVENT ID", "TYPE", "ATTEMPTS", "ERROR"]
    [row] = rows
    assert row[2:] == [
        "cli.users",
        scenario.dead,
        "dsync.user.updated",
        "2",
        "RuntimeError: directory service refused user user_b",
    ]


def test_list_json_and_filters(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list", "--json"]) == 0
    everything = orjson.loads(capsys.readouterr().out)
    assert main(["dlq", "list", "--json", "--handler", "cli.strict"]) == 0
    other_handler = orjson.loads(capsys.readouterr().out)
    assert main(["dlq", "list", "--json", "--since", "1m"]) == 0
    too_recent = orjson.loads(capsys.readouterr().out)
    assert main(["dlq", "list", "--json", "--since", "1h", "--until", "1m"]) == 0
    in_range = orjson.loads(capsys.readouterr().out)

    assert everything["kind"] == "dead"
    assert everything["total"] == 1
    [letter] = everything["letters"]
    assert letter["event_id"] == scenario.dead
    assert letter["handler"] == "cli.users"
    assert letter["source"] == "workos"
    assert letter["attempts"] == 2
    assert letter["error_type"] == "RuntimeError"
    assert letter["ordering_key"] == "user_b"
    assert "traceback" not in letter
    assert other_handler["letters"] == []
    assert too_recent["letters"] == []
    assert in_range["letters"] == everything["letters"]


def test_list_skipped_late_events(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list", "--skipped"]) == 0

    header, *rows = table(capsys.readouterr().out)
    assert header[0] == "SKIPPED"
    [row] = rows
    assert row[2:4] == ["cli.strict", scenario.late]
    assert row[-1] == "LateEvent: skipped: issued before a delivered event"


def test_list_when_there_is_nothing(yard: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list"]) == 0
    assert capsys.readouterr().out == "no dead letters\n"


def test_show_has_the_full_record_and_traceback(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "show", scenario.dead]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"dead letter of cli.users: event {scenario.dead}\n")
    assert "attempts      2  (first failure " in out
    assert "ordering key  user_b  (pair " in out
    assert "error         RuntimeError: directory service refused user user_b\n" in out
    assert "\ntraceback\n  Traceback (most recent call last):\n" in out
    assert 'raise RuntimeError(f"directory service refused user' in out


def test_show_json(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "show", scenario.dead, "--json", "--handler", "cli.users"]) == 0

    [letter] = orjson.loads(capsys.readouterr().out)["letters"]
    assert letter["event_id"] == scenario.dead
    assert letter["traceback"].startswith("Traceback (most recent call last):")
    assert letter["record"]["error_message"] == "directory service refused user user_b"
    assert letter["first_failure_at"] <= letter["last_failure_at"]


def test_show_of_no_letter_is_one_line(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "show", scenario.done]) == 1
    assert capsys.readouterr().err == f"hookyard dlq: no dead letter for event {scenario.done!r}\n"


# --- replay ---------------------------------------------------------------------------------------------------


def test_replay_puts_the_event_back_and_the_handler_then_gets_it(
    scenario: Scenario, yard: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the downstream works again
    cli_state.REFUSED_USERS.clear()
    cli_state.DELIVERED.clear()

    # When the dead letter is replayed
    assert main(["dlq", "replay", scenario.dead]) == 0
    out = capsys.readouterr().out
    assert out.startswith("replayed 1 dead letter (cli.users: 1); workers run them within 10 s")
    assert main(["dlq", "list", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["letters"] == []
    assert main(["events", "show", scenario.dead, "--json"]) == 0
    [users] = [h for h in orjson.loads(capsys.readouterr().out)["handlers"] if h["handler"] == "cli.users"]
    # The replay goes on counting from the attempts the letter had (its next call says attempt 3)
    assert (users["status"], users["replay"], users["attempts"]) == ("pending", True, 2)

    # Then only that handler runs it again, and it is done
    yard.run()
    replayed = [call for call in cli_state.DELIVERED if call[1] == scenario.dead]
    assert replayed == [("cli.users", scenario.dead, 3, False)]
    capsys.readouterr()  # the harness's log lines
    assert main(["stats", "--json", "--sample", "0"]) == 0
    handlers = orjson.loads(capsys.readouterr().out)["handlers"]
    assert (handlers["cli.users"]["dead"], handlers["cli.users"]["pending"]) == (0, 0)


def test_replay_a_skipped_late_event_delivers_it_late(
    scenario: Scenario, yard: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_state.DELIVERED.clear()

    assert main(["dlq", "replay", "--skipped", "--handler", "cli.strict"]) == 0
    assert capsys.readouterr().out.startswith("replayed 1 skipped late event (cli.strict: 1)")
    yard.run()

    replayed = [call for call in cli_state.DELIVERED if call[1] == scenario.late]
    assert replayed == [("cli.strict", scenario.late, 2, True)]  # its skip counted as attempt 1


def test_replay_dry_run_changes_nothing(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "replay", "--all", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert scenario.dead in out
    assert out.rstrip().endswith("would replay 1 dead letter (cli.users: 1); dry run, nothing changed")
    assert main(["dlq", "list", "--json"]) == 0
    assert len(orjson.loads(capsys.readouterr().out)["letters"]) == 1


def test_replay_json(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "replay", "--handler", "cli.users", "--since", "1h", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert (document["selected"], document["replayed"], document["already_gone"]) == (1, 1, 0)
    assert document["by_handler"] == {"cli.users": 1}
    assert [x["event_id"] for x in document["letters"]] == [scenario.dead]


def test_replay_of_a_selection_that_matches_nothing(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "replay", "--handler", "cli.nobody"]) == 0
    assert capsys.readouterr().out == "no dead letters match\n"


def test_replay_follows_issued_order_within_a_key(yard: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    # Given two dead letters of one user, the later-issued one set aside first
    cli_state.REFUSED_USERS.clear()
    cli_state.REFUSED_USERS.add("user_q")
    cli_state.DELIVERED.clear()
    yard.deliver(cli_state.envelope("event_q2", "dsync.user.updated", yard.clock() - 1000, {"id": "user_q"}))
    yard.run()
    yard.deliver(cli_state.envelope("event_q1", "dsync.user.updated", yard.clock() - 9000, {"id": "user_q"}))
    yard.run()
    cli_state.REFUSED_USERS.clear()
    cli_state.DELIVERED.clear()
    capsys.readouterr()

    # When both are replayed, then the handler gets them in issued order (the older one was late)
    assert main(["dlq", "replay", "--all"]) == 0
    yard.run()

    users = [(eid, late) for handler, eid, _, late in cli_state.DELIVERED if handler == "cli.users"]
    assert users == [("event_q1", True), ("event_q2", False)]


# --- purge ----------------------------------------------------------------------------------------------------


def test_purge_with_yes(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "purge", scenario.dead, "--yes"]) == 0

    assert capsys.readouterr().out == "purged 1 dead letter\n"
    assert main(["dlq", "list", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["letters"] == []
    assert main(["stats", "--json", "--sample", "0"]) == 0
    assert orjson.loads(capsys.readouterr().out)["handlers"]["cli.users"]["dead"] == 0


def test_purge_refuses_without_a_terminal_or_yes(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    # pytest's stdin is not a terminal
    assert main(["dlq", "purge", "--all"]) == 1

    captured = capsys.readouterr()
    assert captured.err == (
        "hookyard dlq: refusing to purge 1 dead letter (cli.users: 1) for good without confirmation: "
        "not a terminal; pass --yes\n"
    )
    assert main(["dlq", "list", "--json"]) == 0
    assert len(orjson.loads(capsys.readouterr().out)["letters"]) == 1


def test_purge_asks_on_a_terminal(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    assert main(["dlq", "purge", "--skipped", "--all"]) == 1
    declined = capsys.readouterr()
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert main(["dlq", "purge", "--skipped", "--all"]) == 0
    accepted = capsys.readouterr()

    assert declined.err == "purge 1 skipped late event (cli.strict: 1) for good? [y/N] "
    assert declined.out == "nothing purged\n"
    assert accepted.out == "purged 1 skipped late event\n"


def test_purge_dry_run_and_json(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "purge", "--all", "--dry-run", "--json"]) == 0
    dry = orjson.loads(capsys.readouterr().out)
    assert main(["dlq", "purge", "--all", "--yes", "--json"]) == 0
    done = orjson.loads(capsys.readouterr().out)

    assert (dry["dry_run"], dry["selected"], dry["purged"]) == (True, 1, 0)
    assert (done["dry_run"], done["selected"], done["purged"]) == (False, 1, 1)
    assert done["by_handler"] == {"cli.users": 1}
