"""A live Hookyard for the console's browser tests: the receiver and the worker fleet (with the console as its
child, HOOKYARD_CONSOLE_PORT) as real processes over the suite's Redis, a SQLite WorkOS mirror migrated by the
mirror's own code, and signed WorkOS-shaped deliveries POSTed to the receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from processor.devtools.embedded_redis import free_port
from processor.mirror.migrate import upgrade
from processor.mirror.status import mirror_engine
from shared.signature import sign
from tests.conftest import TEST_SECRET
from tests.fixtures.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
ORG = "org_01CONSOLEDEMO0000000000001"
DIRECTORY = "directory_01CONSOLEDEMO00000001"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_event(event_id: str, user: str, event_type: str = "dsync.user.created") -> dict[str, object]:
    data = {
        "object": "directory_user",
        "id": user,
        "directory_id": DIRECTORY,
        "organization_id": ORG,
        "idp_id": f"idp-{user}",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "emails": [{"primary": True, "type": "work", "value": f"{user}@example.com"}],
        "state": "active",
        "created_at": _now_iso(),
        "updated_at": _now_iso(),
    }
    return {"object": "event", "id": event_id, "event": event_type, "data": data, "created_at": _now_iso()}


def setup_events() -> list[dict[str, object]]:
    """An organization with an active SSO connection and directory, then two users."""
    now = _now_iso()
    connection = {
        "object": "connection",
        "id": "conn_01CONSOLEDEMO000000000001",
        "organization_id": ORG,
        "connection_type": "OktaSAML",
        "name": "Console Demo Okta",
        "state": "active",
        "domains": [{"object": "connection_domain", "id": "conn_domain_01CONSOLE", "domain": "console.example"}],
        "created_at": now,
        "updated_at": now,
    }
    directory = {
        "object": "directory",
        "id": DIRECTORY,
        "organization_id": ORG,
        "name": "Console Demo Directory",
        "type": "okta scim v2.0",
        "state": "active",
        "domains": [{"object": "organization_domain", "id": "org_domain_01CONSOLE", "domain": "console.example"}],
        "created_at": now,
        "updated_at": now,
    }
    return [
        {"object": "event", "id": "event_01CONSOLE_CONNECTION", "event": "connection.activated", "data": connection,
         "created_at": now},
        {"object": "event", "id": "event_01CONSOLE_DIRECTORY", "event": "dsync.activated", "data": directory,
         "created_at": now},
        user_event("event_01CONSOLE_USER_ADA", "directory_user_01ADA"),
        user_event("event_01CONSOLE_USER_BOB", "directory_user_01BOB"),
    ]  # fmt: skip


class Stack:
    """The processes, started in `start` and stopped (SIGTERM, then a clean exit expected) in `stop`."""

    def __init__(self, redis_url: str, data_dir: Path, token: str) -> None:
        self.redis_url = redis_url
        self.receiver_port = free_port()
        self.console_port = free_port()
        self.mirror_url = f"sqlite:///{data_dir / 'mirror.db'}"
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "WORKOS_WEBHOOK_SECRET": TEST_SECRET,
            "HOOKYARD_PORT": str(self.receiver_port),
            "HOOKYARD_HANDLERS": "tests.fixtures.console_handlers",
            "HOOKYARD_ENTRY_POINTS": "false",
            "HOOKYARD_MIRROR_URL": self.mirror_url,
            "HOOKYARD_WORKER_METRICS_PORT": str(free_port()),
            "HOOKYARD_REORDER_WINDOW": "200ms",
            "HOOKYARD_RECOVERY_TIMEOUT": "6s",
            "HOOKYARD_SWEEP_INTERVAL": "250ms",
            "HOOKYARD_CONSOLE_PORT": str(self.console_port),
            "HOOKYARD_CONSOLE_TOKEN": token,
            "HOOKYARD_CONSOLE_SAMPLE_INTERVAL": "1s",
            "HOOKYARD_DATA_DIR": str(data_dir),
            "HOOKYARD_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT),
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    def start(self) -> None:
        engine = mirror_engine(self.mirror_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        for module in ("receiver", "processor"):
            self.processes.append(subprocess.Popen([sys.executable, "-m", module], env=self.env, cwd=ROOT))
        wait_for(lambda: self._answers(f"http://127.0.0.1:{self.receiver_port}/healthz"), 30, "the receiver")
        wait_for(lambda: self._answers(self.console_url + "/"), 30, "the console")

    def stop(self) -> list[int | None]:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=30) for process in self.processes]

    def send(self, envelope: dict[str, object]) -> None:
        body = orjson.dumps(envelope)
        header = sign(body, TEST_SECRET.encode(), int(time.time() * 1000))
        url = f"http://127.0.0.1:{self.receiver_port}/webhooks/workos"
        answer = httpx.post(url, content=body, headers={"WorkOS-Signature": header}, timeout=10)
        assert answer.status_code == 200, answer.text

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False
