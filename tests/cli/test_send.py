"""`hookyard send`: what it signs the official SDK verifies; one delivery for a demo, many for load — duplicates,
shuffled order, a fixed rate, every event type — sent concurrently with a summary."""

from __future__ import annotations

import itertools
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from workos import WorkOSClient

from processor.cli import main, send
from processor.cli.send import plan_deliveries
from processor.devtools.embedded_redis import free_port
from processor.devtools.samples import EVENT_TYPES, sample_event
from tests.conftest import SAMPLES, TEST_SECRET

WHEN = datetime(2025, 6, 1, 12, 0, 0, 123_000, tzinfo=UTC)


# --- a stand-in receiver that checks signatures with the official SDK -----------------------------------------


@dataclass
class Delivery:
    body: bytes
    signature: str
    verified: bool


@dataclass
class StubReceiver:
    url: str
    secret: str
    status: int = 200
    deliveries: list[Delivery] = field(default_factory=list)


class StubServer(ThreadingHTTPServer):
    # `send` opens up to 16 connections at once; the default backlog of 5 would reset some of them.
    request_queue_size = 128
    daemon_threads = True


@pytest.fixture
def stub_receiver() -> Iterator[StubReceiver]:
    with WorkOSClient(api_key="sk_test_unused") as workos:
        server = StubServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        stub = StubReceiver(url=f"http://127.0.0.1:{server.server_port}/webhooks/workos", secret=TEST_SECRET)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signature = self.headers.get("WorkOS-Signature", "")
                try:
                    workos.webhooks.verify_header(
                        event_body=body, event_signature=signature, secret=stub.secret, tolerance=180
                    )
                    verified = True
                except ValueError:
                    verified = False
                with lock:
                    stub.deliveries.append(Delivery(body, signature, verified))
                status = stub.status if verified else 401
                answer = orjson.dumps({"status": "accepted" if status == 200 else "rejected"})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        server.RequestHandlerClass = Handler
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="stub-receiver", daemon=True)
        thread.start()
        try:
            yield stub
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


def deterministic_samples(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], dict[str, Any]]:
    rng = random.Random(1234)

    def build(event_type: str, **_: Any) -> dict[str, Any]:
        return sample_event(event_type, rng=rng, created_at=WHEN)

    monkeypatch.setattr(send, "sample_event", build)
    return lambda event_type: sample_event(event_type, rng=random.Random(1234), created_at=WHEN)


# --- one delivery ---------------------------------------------------------------------------------------------


def test_send_posts_a_sample_the_official_sdk_verifies(
    env: Path,
    stub_receiver: StubReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    expected = deterministic_samples(monkeypatch)("dsync.user.created")

    code = main(["send", "dsync.user.created", "--url", stub_receiver.url])

    assert code == 0
    [delivery] = stub_receiver.deliveries
    assert delivery.verified
    assert delivery.body == orjson.dumps(expected)
    assert delivery.signature.startswith("t=")
    assert capsys.readouterr().out == f'200 {expected["id"]} {{"status":"accepted"}}\n'


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_send_any_event_type(
    event_type: str, env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    assert main(["send", event_type, "--url", stub_receiver.url]) == 0
    [delivery] = stub_receiver.deliveries
    assert delivery.verified
    assert orjson.loads(delivery.body)["event"] == event_type


def test_send_file_sends_the_bytes_verbatim(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pretty-printed, non-ASCII and a trailing newline: any re-encoding would change the bytes.
    source = (SAMPLES / "dsync.group.user_added.json").read_bytes().replace(b"Hadley", "Hädley".encode())
    body_file = env.parent / "event.json"
    body_file.write_bytes(source + b"\n")
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    assert main(["send", "--file", str(body_file), "--url", stub_receiver.url]) == 0

    [delivery] = stub_receiver.deliveries
    assert delivery.body == source + b"\n"
    assert delivery.verified
    assert capsys.readouterr().out.startswith("200 wh_01FMV8XH3S04J3G8QP9DABQSKX ")


def test_send_count_sends_distinct_events_and_a_summary(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    assert main(["send", "dsync.group.user_added", "--count", "4", "--url", stub_receiver.url]) == 0

    assert len(stub_receiver.deliveries) == 4
    assert all(d.verified for d in stub_receiver.deliveries)
    assert len({orjson.loads(d.body)["id"] for d in stub_receiver.deliveries}) == 4
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert re.fullmatch(r"sent 4 deliveries \(4 events, 0 duplicates\) in \d+\.\d\d s \([\d.]+/s\): 200: 4", out[0])


def test_send_verbose_prints_one_line_per_delivery(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    assert main(["send", "dsync.user.created", "--count", "3", "-v", "--url", stub_receiver.url]) == 0

    *lines, summary = capsys.readouterr().out.splitlines()
    ids = {orjson.loads(d.body)["id"] for d in stub_receiver.deliveries}
    assert sorted(lines) == sorted(f'200 {i} {{"status":"accepted"}}' for i in ids)
    assert summary.startswith("sent 3 deliveries")


def test_send_defaults_to_the_configured_host_and_port(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    monkeypatch.setenv("HOOKYARD_HOST", "127.0.0.1")
    monkeypatch.setenv("HOOKYARD_PORT", stub_receiver.url.split(":")[2].split("/")[0])

    assert main(["send", "connection.activated"]) == 0
    assert len(stub_receiver.deliveries) == 1


def test_send_uses_the_secret_dev_saved_when_none_is_configured(env: Path, stub_receiver: StubReceiver) -> None:
    env.mkdir()
    (env / "webhook-secret").write_text("whsec_saved_by_dev_0123\n")
    stub_receiver.secret = "whsec_saved_by_dev_0123"

    assert main(["send", "dsync.deleted", "--url", stub_receiver.url]) == 0
    assert stub_receiver.deliveries[0].verified


def test_send_signs_with_the_secret_that_outlives_a_rotation(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", f"whsec_old_secret_1@2999-01-01T00:00:00Z,{TEST_SECRET}")

    assert main(["send", "dsync.deleted", "--url", stub_receiver.url]) == 0
    assert stub_receiver.deliveries[0].verified


def test_send_secret_flag_wins(env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", "whsec_not_this_one")
    stub_receiver.secret = "whsec_from_the_flag"

    assert main(["send", "dsync.deleted", "--url", stub_receiver.url, "--secret", "whsec_from_the_flag"]) == 0
    assert stub_receiver.deliveries[0].verified


def test_send_exits_1_unless_every_response_is_200(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    stub_receiver.status = 503

    assert main(["send", "dsync.user.updated", "--count", "2", "--url", stub_receiver.url]) == 1

    assert len(stub_receiver.deliveries) == 2  # a failure does not stop the rest
    assert capsys.readouterr().out.rstrip().endswith("): 503: 2")


def test_send_with_a_wrong_secret_gets_a_rejection(env: Path, stub_receiver: StubReceiver) -> None:
    assert main(["send", "dsync.user.updated", "--secret", "whsec_wrong_secret", "--url", stub_receiver.url]) == 1
    assert stub_receiver.deliveries[0].verified is False


def test_send_to_nothing_says_so_in_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/workos"

    assert main(["send", "dsync.user.created", "--secret", TEST_SECRET, "--url", url]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"hookyard send: cannot connect to {url} — is `make run` running?\n"


def test_send_without_any_secret_is_a_configuration_error(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "dsync.user.created"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("hookyard: configuration error: WORKOS_WEBHOOK_SECRET: not set")
    assert "--secret" in err
    assert "hookyard dev" in err


def test_send_reports_a_bad_setting_by_name(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOKYARD_PORT", "eighty")

    assert main(["send", "dsync.user.created", "--secret", TEST_SECRET]) == 2
    assert capsys.readouterr().err.startswith("hookyard: configuration error: HOOKYARD_PORT: ")


def test_send_unreadable_file_is_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "--file", "missing.json", "--secret", TEST_SECRET]) == 1
    assert capsys.readouterr().err == "hookyard send: cannot read missing.json: No such file or directory\n"


# --- many deliveries: duplicates, order, rate, every type -----------------------------------------------------


def sent_ids(stub: StubReceiver) -> list[str]:
    return [orjson.loads(d.body)["id"] for d in stub.deliveries]


def test_send_duplicates_resends_that_share_of_the_events_freshly_signed(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    code = main(["send", "dsync.user.updated", "--count", "10", "--duplicates", "0.3", "--url", stub_receiver.url])

    assert code == 0
    counts = Counter(sent_ids(stub_receiver))
    assert len(counts) == 10
    assert sorted(counts.values()) == [1] * 7 + [2] * 3
    # The second delivery has the same bytes, and a signature of its own that verifies
    by_id: dict[str, list[Delivery]] = {}
    for delivery in stub_receiver.deliveries:
        by_id.setdefault(orjson.loads(delivery.body)["id"], []).append(delivery)
    for first, second in (d for d in by_id.values() if len(d) == 2):
        assert first.body == second.body
        assert first.verified
        assert second.verified
    assert "sent 13 deliveries (10 events, 3 duplicates)" in capsys.readouterr().out


def test_send_shuffle_is_random_but_seeded(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    base = ["send", "dsync.user.updated", "--count", "12", "--seed", "7", "--concurrency", "1"]
    base += ["--url", stub_receiver.url]

    def sent() -> list[str]:
        # Sample ids embed the time they were made; what the seed fixes is everything drawn from it.
        found = [orjson.loads(d.body)["data"]["idp_id"] for d in stub_receiver.deliveries]
        stub_receiver.deliveries.clear()
        return found

    assert main(base) == 0
    in_order = sent()
    assert main([*base, "--shuffle"]) == 0
    shuffled = sent()
    assert main([*base, "--shuffle"]) == 0

    # Same seed, same samples: the same events, in another order, and the same order again
    assert sorted(shuffled) == sorted(in_order)
    assert shuffled != in_order
    assert sent() == shuffled


def test_plan_puts_duplicates_after_every_first_delivery_unless_shuffled() -> None:
    bodies = [orjson.dumps({"id": f"event_{i}"}) for i in range(10)]

    plan = plan_deliveries(bodies, duplicates=0.5, shuffle=False, rng=random.Random(3))

    assert [d.event_id for d in plan[:10]] == [f"event_{i}" for i in range(10)]
    assert all(d.duplicate for d in plan[10:])
    assert len(plan) == 15


def test_send_rate_paces_the_deliveries(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    started = time.monotonic()
    assert main(["send", "dsync.user.created", "--count", "6", "--rate", "40", "--url", stub_receiver.url]) == 0
    elapsed = time.monotonic() - started

    # 6 starts at 40/s are spread over at least 5 intervals of 25 ms
    assert len(stub_receiver.deliveries) == 6
    assert elapsed >= 5 / 40


def test_send_all_sends_every_event_type(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    assert main(["send", "all", "--count", "2", "--url", stub_receiver.url]) == 0

    types = Counter(orjson.loads(d.body)["event"] for d in stub_receiver.deliveries)
    assert types == dict.fromkeys(EVENT_TYPES, 2)
    assert all(d.verified for d in stub_receiver.deliveries)
    assert f"sent {2 * len(EVENT_TYPES)} deliveries" in capsys.readouterr().out


def test_send_json_summary(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    code = main(["send", "dsync.deleted", "--count", "5", "--duplicates", "0.2", "--json", "--url", stub_receiver.url])

    assert code == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert summary["url"] == stub_receiver.url
    assert (summary["events"], summary["duplicates"], summary["planned"], summary["sent"]) == (5, 1, 6, 6)
    assert summary["statuses"] == {"200": 6}
    assert summary["errors"] == {}
    assert summary["ok"] is True


def test_send_many_to_nothing_stops_at_the_first_refusal(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/workos"

    assert main(["send", "dsync.user.created", "--count", "50", "--secret", TEST_SECRET, "--url", url]) == 1

    captured = capsys.readouterr()
    assert "connect: " in captured.out
    assert "not sent" in captured.out
    assert captured.err == f"hookyard send: cannot connect to {url} — is `make run` running?\n"


# --- --set and --sequence -------------------------------------------------------------------------------------


def test_send_sets_fields_by_dotted_path_with_json_values(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    argv = ["send", "dsync.user.updated", "--url", stub_receiver.url, "--count", "2"]
    argv += ["--set", "data.id=user_42", "--set", "data.state=inactive", "--set", 'data.custom={"tier": 3}']
    argv += ["--set", "data.manager_id=null", "--set", "data.note.text=007", "--set", "data.flag=true"]

    assert main(argv) == 0

    for delivery in stub_receiver.deliveries:
        assert delivery.verified
        data = orjson.loads(delivery.body)["data"]
        assert data["id"] == "user_42"
        assert data["state"] == "inactive"
        assert data["custom"] == {"tier": 3}
        assert data["manager_id"] is None
        assert data["note"] == {"text": "007"}  # not JSON (a leading zero): kept as the string given
        assert data["flag"] is True


def test_send_set_needs_a_path_and_a_value(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["send", "dsync.user.updated", "--set", "state"])
    assert "expected PATH=VALUE" in capsys.readouterr().err


def test_send_sequence_sends_one_resources_events_issued_in_order(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    argv = ["send", "--sequence", "dsync.user.created,updated,deleted", "--count", "2", "--shuffle", "--seed", "7"]
    assert main([*argv, "--url", stub_receiver.url]) == 0

    envelopes = [orjson.loads(d.body) for d in stub_receiver.deliveries]
    assert len(envelopes) == 6
    assert all(d.verified for d in stub_receiver.deliveries)
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for envelope in envelopes:
        by_resource.setdefault(envelope["data"]["id"], []).append(envelope)
    assert len(by_resource) == 2
    for events in by_resource.values():
        issued = sorted(events, key=lambda e: e["created_at"])
        assert [e["event"] for e in issued] == ["dsync.user.created", "dsync.user.updated", "dsync.user.deleted"]
        times = [datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")) for e in issued]
        assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [1.0, 1.0]
        assert len({e["data"]["directory_id"] for e in events}) == 1
    assert "sent 6 deliveries (6 events, 0 duplicates)" in capsys.readouterr().out


def test_send_sequence_of_a_membership_follows_its_user(env: Path, stub_receiver: StubReceiver) -> None:
    argv = ["send", "dsync.group.user_added", "--sequence", "user_added,user_removed", "--secret", TEST_SECRET]
    assert main([*argv, "--url", stub_receiver.url]) == 0

    added, removed = sorted((orjson.loads(d.body) for d in stub_receiver.deliveries), key=lambda e: e["created_at"])
    assert (added["event"], removed["event"]) == ("dsync.group.user_added", "dsync.group.user_removed")
    assert added["data"]["user"]["id"] == removed["data"]["user"]["id"]


def test_send_sequence_refuses_unknown_types(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["send", "--sequence", "dsync.user.created,renamed"])
    assert "--sequence: unknown event types dsync.user.renamed" in capsys.readouterr().err


# --- against the real receiver --------------------------------------------------------------------------------


@pytest.fixture
def receiver(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """`python -m receiver` on a free port, with the test secret; yields its webhook URL."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKYARD_", "WORKOS_")) and k != "REDIS_URL"}
    environ.update(
        REDIS_URL=redis_url, WORKOS_WEBHOOK_SECRET=TEST_SECRET, HOOKYARD_PORT=str(port), HOOKYARD_DATA_DIR=str(tmp_path)
    )
    with (tmp_path / "receiver.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "receiver"], env=environ, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=1.0) as client:
            while True:
                assert process.poll() is None, (tmp_path / "receiver.log").read_text()
                try:
                    if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("the receiver did not answer /healthz within 30 s")
                time.sleep(0.02)
        yield f"http://127.0.0.1:{port}/webhooks/workos"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_send_count_with_a_wrong_secret_says_the_receivers_reason_once(
    env: Path, receiver: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["send", "dsync.user.created", "--count", "5", "--secret", "whsec_wrong_secret", "--url", receiver]

    assert main(argv) == 1

    captured = capsys.readouterr()
    assert "401: 5" in captured.out
    reason = f"hookyard send: {receiver} refused the signature (401): mismatch — the secret is not the receiver's"
    assert captured.err.count(reason) == 1, captured.err
    assert captured.err.count("\n") == 1
