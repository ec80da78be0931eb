"""One test (or a few) for each point of docs/security.md, in its order.

Constant-time comparison of signatures; replays outside the tolerance refused; no secret, signature or body in
logs or metrics; secret rotation without downtime; probes and metrics on a port of their own; a non-root
container; dependency versions pinned by the constraints file CI installs with.
"""

from __future__ import annotations

import ast
import hmac
import io
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from receiver import create_app
from shared import signature as signature_module
from shared.errors import ConfigError, SignatureError
from shared.keys import INBOX
from shared.logging import configure_logging
from shared.settings import Settings
from shared.signature import sign, verify_signature
from tests.conftest import TEST_SECRET
from tests.receiver.conftest import event_body, inbox_events, now_ms, serving
from tests.security.live_receiver import exchange, live_receiver

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = "/webhooks/workos"
TOLERANCE_MS = 180_000
T0 = 1_800_000_000_000  # a fixed "now" for the injectable clock (2027-01-15)


class Clock:
    """The receiver's injectable clock (`create_app(settings, clock_ms=...)`), moved by the test."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _signed(body: bytes, at_ms: int, secret: str = TEST_SECRET) -> dict[str, str]:
    return {"WorkOS-Signature": sign(body, secret.encode(), at_ms)}


# --- 1. constant-time comparisons -----------------------------------------------------------------------------

# Names whose values are secrets, or digests/signatures derived from them or compared against them. Not `token`:
# the processor's lease tokens are fencing ids it compares with its own copies, nothing a sender could probe.
_SENSITIVE = re.compile(r"secret|signature|digest|hmac|\bmac\b|password|expected|candidate", re.IGNORECASE)
_PREFIX_COMPARISONS = {"startswith", "endswith", "find", "index", "count", "__eq__", "__ne__"}


def _sensitive_operand(node: ast.expr) -> bool:
    """A variable or attribute named like a secret; constants (UPPER_CASE names) and len(...) are public."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        return False
    for sub in ast.walk(node):
        name = sub.id if isinstance(sub, ast.Name) else sub.attr if isinstance(sub, ast.Attribute) else None
        if name is not None and not name.isupper() and _SENSITIVE.search(name):
            return True
    return False


def _variable_time_comparisons(path: Path) -> Iterator[tuple[int, str]]:
    """(line, code) of each `==`, `!=`, `in` or prefix test that involves a secret-like name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            equality = any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops)
            if equality and any(_sensitive_operand(operand) for operand in (node.left, *node.comparators)):
                yield node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _PREFIX_COMPARISONS
            and _sensitive_operand(node.func.value)
        ):
            yield node.lineno, ast.unparse(node)


def test_no_secret_or_signature_is_compared_with_a_variable_time_operator() -> None:
    sources = [path for package in ("shared", "receiver", "processor") for path in (ROOT / package).rglob("*.py")]
    assert len(sources) > 20

    found = [
        f"{path.relative_to(ROOT)}:{line}: {code}"
        for path in sources
        for line, code in _variable_time_comparisons(path)
    ]

    assert found == [], "compare secrets and signatures with hmac.compare_digest:\n" + "\n".join(found)
    assert "hmac.compare_digest(" in (ROOT / "shared" / "signature.py").read_text()


def test_the_scan_would_catch_a_plain_comparison(tmp_path: Path) -> None:
    # The check above is only as good as its pattern: it must flag the ways a comparison is usually written.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(expected, candidate, secret, header_signature, SIGNATURE_HEADER, name):\n"
        "    a = expected == candidate\n"
        "    b = header_signature != 'x'\n"
        "    c = secret in {'a'}\n"
        "    d = candidate.startswith(expected[:4])\n"
        "    e = len(candidate) == 64\n"  # public: a length
        "    f = name == SIGNATURE_HEADER\n"  # public: a header name
    )

    assert [line for line, _ in _variable_time_comparisons(sample)] == [2, 3, 4, 5]


@pytest.mark.parametrize("matching", [None, 0, 1, 3])
def test_verify_signature_meets_every_secret_with_every_candidate_through_compare_digest(
    monkeypatch: pytest.MonkeyPatch, matching: int | None
) -> None:
    # Given two secrets and a header with two v1 candidates, one of which may be right
    body = b'{"id":"evt"}'
    secrets = [b"secret_old_0123", b"secret_new_4567"]
    genuine = [sign(body, secret, T0).split("v1=")[1] for secret in secrets]
    candidates = ["0" * 64, "f" * 64]
    if matching is not None:
        candidates[matching % 2] = genuine[matching // 2]
    header = f"t={T0}, v1={candidates[0]}, v1={candidates[1]}"
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature_module.hmac, "compare_digest", counting)

    # When it is verified
    if matching is None:
        with pytest.raises(SignatureError, match="mismatch"):
            verify_signature(body, header, secrets, now_ms=T0, tolerance_ms=TOLERANCE_MS)
    else:
        assert verify_signature(body, header, secrets, now_ms=T0, tolerance_ms=TOLERANCE_MS) == T0

    # Then all four pairs went through compare_digest, whether and wherever one matched: no early exit
    assert len(calls) == 4
    assert {candidate for _, candidate in calls} == set(candidates)


# --- 2. replays -------------------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def clocked_client(base_env: dict[str, str], clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(Settings.from_env(base_env), clock_ms=clock)) as client:
        yield client


async def test_a_delivery_replayed_after_the_tolerance_is_refused_as_stale(
    clocked_client: httpx.AsyncClient, clock: Clock, redis_client: redis.Redis
) -> None:
    # Given a delivery signed and accepted at T0
    body = event_body("event_replayed")
    headers = _signed(body, T0)
    assert (await clocked_client.post(WEBHOOK, content=body, headers=headers)).status_code == 200

    # When the same bytes and header are sent again at the edge of the tolerance, and just past it
    clock.now_ms = T0 + TOLERANCE_MS
    at_edge = await clocked_client.post(WEBHOOK, content=body, headers=headers)
    clock.now_ms = T0 + TOLERANCE_MS + 1
    past_edge = await clocked_client.post(WEBHOOK, content=body, headers=headers)

    # Then within the window the receiver stores it again (the processor drops the duplicate by event id),
    # and past it the replay is refused as stale, and not stored
    assert at_edge.status_code == 200
    assert past_edge.status_code == 401
    assert past_edge.json() == {"error": "invalid_signature", "reason": "stale"}
    assert [event.event_id for event in inbox_events(redis_client)] == ["event_replayed"] * 2


async def test_a_signature_from_the_future_is_refused(clocked_client: httpx.AsyncClient) -> None:
    body = event_body("event_future")

    ahead = await clocked_client.post(WEBHOOK, content=body, headers=_signed(body, T0 + TOLERANCE_MS + 1))
    at_edge = await clocked_client.post(WEBHOOK, content=body, headers=_signed(body, T0 + TOLERANCE_MS))

    assert ahead.json() == {"error": "invalid_signature", "reason": "future"}
    assert at_edge.status_code == 200


async def test_a_replay_with_a_fresh_timestamp_but_the_old_digest_is_a_mismatch(
    clocked_client: httpx.AsyncClient, clock: Clock
) -> None:
    # An attacker who recorded a delivery cannot refresh its `t`: the digest covers it
    body = event_body("event_refreshed")
    old_digest = sign(body, TEST_SECRET.encode(), T0).split("v1=")[1]
    clock.now_ms = T0 + 10 * TOLERANCE_MS

    response = await clocked_client.post(
        WEBHOOK, content=body, headers={"WorkOS-Signature": f"t={clock.now_ms}, v1={old_digest}"}
    )

    assert response.json() == {"error": "invalid_signature", "reason": "mismatch"}


# --- 3. nothing secret in logs or metrics --------------------------------------------------------------------

MARKER = "MARKER-5f1c0e7a-never-log-me"


def _leaks(text: str, secrets: list[str]) -> list[str]:
    """The lines of `text` that contain any of `secrets`."""
    return [line for line in text.splitlines() if any(secret in line for secret in secrets)]


def _deliveries(secret: str, at_ms: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """Valid, tampered, foreign, stale and malformed deliveries, each carrying MARKER in its body or path."""
    body = orjson.dumps({"id": "event_logged", "event": "user.created", "data": {"note": MARKER}})
    tampered = body.replace(b"user_", b"usr_").replace(MARKER.encode(), (MARKER + "!").encode())
    not_json = MARKER.encode() + b" \xff not json"
    return [
        (WEBHOOK, body, _signed(body, at_ms, secret)),
        (WEBHOOK, tampered, _signed(body, at_ms, secret)),
        (WEBHOOK, body, _signed(body, at_ms, "whsec_someone_else_" + MARKER)),
        (WEBHOOK, body, _signed(body, at_ms - 10 * TOLERANCE_MS, secret)),
        (WEBHOOK, not_json, _signed(not_json, at_ms, secret)),
        (WEBHOOK, body, {"WorkOS-Signature": f"t={at_ms}, v1={MARKER}"}),
        (WEBHOOK, body, {"WorkOS-Signature": MARKER * 200}),
        (f"/webhooks/{MARKER}", body, _signed(body, at_ms, secret)),
        (WEBHOOK, MARKER.encode() * 70_000, _signed(body, at_ms, secret)),  # over the body limit
    ]


def _signature_values(deliveries: list[tuple[str, bytes, dict[str, str]]]) -> list[str]:
    values = [headers["WorkOS-Signature"] for _, _, headers in deliveries if headers]
    digests = [value.split("v1=")[1] for value in values if "v1=" in value]
    return values + digests


async def test_no_secret_signature_or_body_reaches_the_logs_or_metrics(base_env: dict[str, str]) -> None:
    # Given a receiver logging at debug level into a buffer
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    try:
        app = create_app(Settings.from_env(base_env), clock_ms=lambda: T0)
        deliveries = _deliveries(TEST_SECRET, T0)
        async with serving(app) as client:
            # When valid, tampered, forged, stale and malformed deliveries arrive
            statuses = [
                (await client.post(path, content=body, headers=headers)).status_code
                for path, body, headers in deliveries
            ]
            metrics = (await client.get("/metrics")).text
    finally:
        configure_logging("info", "json")
    # The test's own HTTP client logs its requests (URL included) into the same root logger: not the receiver's.
    logs = "\n".join(line for line in stream.getvalue().splitlines() if '"logger_name":"http' not in line)

    # Then they were answered as usual and logged, but no secret, signature or body content appears
    assert statuses == [200, 401, 401, 401, 400, 401, 401, 404, 413]
    assert logs.count('"event":"request"') == len(deliveries)
    secrets = [TEST_SECRET, MARKER, *_signature_values(deliveries)]
    assert _leaks(logs, secrets) == []
    assert _leaks(metrics, secrets) == []
    assert 'source="unknown"' in metrics  # the path segment became the fixed label, not a new series


def test_a_live_receiver_logs_and_exposes_no_secret_signature_or_body(redis_url: str, tmp_path: Path) -> None:
    with live_receiver(tmp_path, redis_url, HOOKYARD_LOG_LEVEL="debug") as receiver:
        # Given a real receiver at debug level; when it gets the same deliveries, and requests that are not HTTP
        deliveries = _deliveries(TEST_SECRET, now_ms())
        with httpx.Client(base_url=receiver.url, timeout=5.0) as client:
            statuses = [
                client.post(path, content=body, headers=headers).status_code for path, body, headers in deliveries
            ]
            metrics = client.get("/metrics").text
        garbage = [
            b"POST /webhooks/workos HTTP/1.1\r\nworkos-signature: " + MARKER.encode() + b"\x00\r\n\r\n",
            b"GET /" + MARKER.encode() + b"\xff HTTP/1.1\r\n\r\n",
            MARKER.encode() + b"\r\n\r\n",
        ]
        for request in garbage:
            answer = exchange(receiver.port, request)
            assert answer is not None and answer.status == 400
        assert receiver.stop() == 0
        logs = receiver.output()

    # Then nothing secret is in its output or its metrics
    assert statuses == [200, 401, 401, 401, 400, 401, 401, 404, 413]
    assert "Invalid HTTP request received." in logs
    secrets = [TEST_SECRET, MARKER, *_signature_values(deliveries)]
    assert _leaks(logs, secrets) == []
    assert _leaks(metrics, secrets) == []


def test_settings_never_show_a_secret() -> None:
    raw = f"{TEST_SECRET}_old@2027-01-01T00:00:00Z,{TEST_SECRET}_new"
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0", "WORKOS_WEBHOOK_SECRET": raw})

    shown = [repr(settings), str(settings), repr(settings.sources), str(settings.sources["workos"].secrets)]

    assert not any(TEST_SECRET in text for text in shown)


@pytest.mark.parametrize("raw", ["short", "long_enough_secret@not-a-time", "long_enough_secret,tiny"])
def test_a_rejected_secret_is_not_echoed_in_the_error(raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0", "WORKOS_WEBHOOK_SECRET": raw})

    assert error.value.setting == "WORKOS_WEBHOOK_SECRET"
    for part in re.split(r"[,@]", raw):
        assert part not in str(error.value)


# --- 4. secret rotation without downtime ---------------------------------------------------------------------


async def test_a_rotated_secret_is_accepted_beside_the_new_one_until_its_expiry(
    base_env: dict[str, str], redis_client: redis.Redis
) -> None:
    # Given the workos source with an old secret expiring at T0 + 1 h and a new one, on one running receiver
    expiry_ms = T0 + 3_600_000
    expiry = datetime.fromtimestamp(expiry_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    old, new = "whsec_old_rotating_out", "whsec_new_rotating_in"
    settings = Settings.from_env({**base_env, "WORKOS_WEBHOOK_SECRET": f"{old}@{expiry},{new}"})
    clock = Clock(T0)

    async def deliver(event_id: str, secret: str) -> httpx.Response:
        body = event_body(event_id)
        return await client.post(WEBHOOK, content=body, headers=_signed(body, clock.now_ms, secret))

    async with serving(create_app(settings, clock_ms=clock)) as client:
        # When the sender signs with either secret before the expiry, then after it (no restart in between)
        before = [(await deliver("event_old_1", old)).status_code, (await deliver("event_new_1", new)).status_code]
        clock.now_ms = expiry_ms - 1
        last_moment = (await deliver("event_old_2", old)).status_code
        clock.now_ms = expiry_ms
        expired = await deliver("event_old_3", old)
        after = (await deliver("event_new_2", new)).status_code

    # Then both are accepted until the expiry; from it on only the new one
    assert before == [200, 200]
    assert last_moment == 200
    assert expired.status_code == 401
    assert expired.json()["reason"] == "mismatch"
    assert after == 200
    stored = [event.event_id for event in inbox_events(redis_client)]
    assert stored == ["event_old_1", "event_new_1", "event_old_2", "event_new_2"]
    assert redis_client.llen(INBOX) == 4


# --- 5. probes and metrics on their own port -----------------------------------------------------------------


def test_with_an_ops_port_the_webhook_port_serves_no_probe_or_metrics(redis_url: str, tmp_path: Path) -> None:
    with live_receiver(tmp_path, redis_url, ops_port=True) as receiver, httpx.Client(timeout=5.0) as client:
        body = event_body("event_split")
        signed = _signed(body, now_ms())

        # The webhook port: deliveries and its own description, nothing else
        assert client.post(f"{receiver.url}{WEBHOOK}", content=body, headers=signed).status_code == 200
        for path in ("/metrics", "/healthz", "/readyz"):
            assert client.get(f"{receiver.url}{path}").status_code == 404, path
        webhook_paths = client.get(f"{receiver.url}/openapi.json").json()["paths"]
        assert set(webhook_paths) == {"/webhooks/{source}", "/openapi.json"}

        # The ops port: probes, metrics and its description, no deliveries
        for path in ("/metrics", "/healthz", "/readyz", "/openapi.json"):
            assert client.get(f"{receiver.ops_url}{path}").status_code == 200, path
        assert client.post(f"{receiver.ops_url}{WEBHOOK}", content=body, headers=signed).status_code == 404
        assert 'outcome="accepted",source="workos"} 1.0' in client.get(f"{receiver.ops_url}/metrics").text

        assert receiver.stop() == 0


# --- 6. a non-root container ------------------------------------------------------------------------------------


def _final_stage(dockerfile: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The instructions of the last stage (continuation lines joined) and the ARG defaults visible in it."""
    text = re.sub(r"\\\n", " ", dockerfile)
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    stage = instructions[last_from + 1 :]
    args: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword in ("ARG", "ENV") and "=" in rest:
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip().strip('"')
    return stage, args


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m[1] or m[2], m[0]), value)


def test_the_container_runs_as_a_non_root_user() -> None:
    dockerfile = ROOT / "deploy" / "Dockerfile"
    assert dockerfile.is_file(), "deploy/Dockerfile is missing"
    stage, args = _final_stage(dockerfile.read_text())

    users = [_expand(rest, args) for keyword, rest in stage if keyword == "USER"]

    assert users, "the final stage has no USER: the processes would run as root"
    user, _, group = users[-1].partition(":")
    assert "$" not in user, f"USER {users[-1]} does not resolve from the stage's ARG/ENV defaults"
    assert user not in ("root", "0"), f"USER {users[-1]} is root"
    assert group not in ("root", "0"), f"USER {users[-1]} has the root group"


# --- 7. pinned dependencies ---------------------------------------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, separator, version = line.partition("==")
            assert separator, f"not an exact pin: {line!r}"
            pins[_canonical(name)] = version.strip()
    return pins


def test_every_installed_package_is_pinned_by_the_constraints_file() -> None:
    constraints = ROOT / "constraints.txt"
    assert constraints.is_file()
    pinned = _pins(constraints.read_text().splitlines())
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    installed = _pins([line for line in freeze if not line.startswith("-e ")])
    for tool in ("pip", "setuptools", "wheel"):
        installed.pop(tool, None)

    unpinned = sorted(f"{name}=={version}" for name, version in installed.items() if name not in pinned)
    drifted = sorted(
        f"{name}: installed {version}, pinned {pinned[name]}"
        for name, version in installed.items()
        if name in pinned and pinned[name] != version
    )
    assert unpinned == [], "installed but not in constraints.txt:\n" + "\n".join(unpinned)
    assert drifted == []


def test_ci_installs_with_the_constraints_file() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and "-e " in line]

    assert installs, "no `pip install -e` line in the Makefile"
    assert all("-c constraints.txt" in line for line in installs), installs
    # CI runs `make test`, which installs (through the stamp) before anything else
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^test: .*test-only", makefile, re.MULTILINE)
    assert re.search(r"^test-only: \$\(STAMP\)", makefile, re.MULTILINE)
    assert re.search(r"^\$\(STAMP\): .*constraints\.txt", makefile, re.MULTILINE)
