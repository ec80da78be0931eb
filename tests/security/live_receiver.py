"""A real `python -m receiver` for tests that need the HTTP server itself: raw sockets, slow clients, its RSS.

Also a minimal HTTP/1.1 response reader for raw sockets, where the request bytes are hostile on purpose and no
HTTP client library would send them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from processor.devtools.embedded_redis import free_port
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 20.0
STOP_DEADLINE_S = 15.0
#: Upper bound on one raw answer; the receiver's own are a few dozen bytes.
MAX_RESPONSE_BYTES = 64 * 1024


def receiver_environment(redis_url: str, **settings: str) -> dict[str, str]:
    """The parent's environment minus Hookyard settings, plus the test Redis, TEST_SECRET and `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKYARD_", "WORKOS_", "REDIS_URL"))}
    return {
        **env,
        "REDIS_URL": redis_url,
        "WORKOS_WEBHOOK_SECRET": TEST_SECRET,
        "HOOKYARD_LOG_FORMAT": "json",
        **settings,
    }


class LiveReceiver:
    """A `python -m receiver` child on free loopback ports, its output in files (a full pipe would block it)."""

    def __init__(self, log_dir: Path, redis_url: str, *, ops_port: bool = False, **settings: str) -> None:
        self.port = free_port()
        self.ops_port = free_port() if ops_port else None
        if self.ops_port is not None:
            settings["HOOKYARD_OPS_PORT"] = str(self.ops_port)
        env = receiver_environment(redis_url, HOOKYARD_PORT=str(self.port), **settings)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = log_dir / f"receiver-{self.port}.stderr.log"
        self._stdout = (log_dir / f"receiver-{self.port}.stdout.log").open("wb")
        self._stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "receiver"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ops_url(self) -> str:
        """Where probes and metrics are served: the ops port when there is one."""
        return f"http://127.0.0.1:{self.ops_port or self.port}"

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        with httpx.Client(timeout=1.0) as client:
            while True:
                # With an ops port, the webhook port may open a moment before or after it: wait for both.
                with contextlib.suppress(httpx.TransportError):
                    healthy = client.get(f"{self.ops_url}/healthz").status_code == 200
                    if healthy and (self.ops_port is None or _port_open(self.port)):
                        return
                assert time.monotonic() < deadline, f"receiver did not start: {self.output()}"
                # Waiting on the process doubles as the polling interval and catches an early exit.
                try:
                    code = self.process.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                raise AssertionError(f"receiver exited with {code}: {self.output()}")

    def alive(self) -> bool:
        """The process runs and answers `/healthz` with 200."""
        if self.process.poll() is not None:
            return False
        with httpx.Client(timeout=5.0) as client:
            return client.get(f"{self.ops_url}/healthz").status_code == 200

    def rss_bytes(self) -> int:
        """Resident set size of the process, from /proc (VmRSS is in kB)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def output(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM and wait for the graceful exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_DEADLINE_S)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stdout.close()
        self._stderr.close()


@contextmanager
def live_receiver(log_dir: Path, redis_url: str, *, ops_port: bool = False, **settings: str) -> Iterator[LiveReceiver]:
    """A started receiver, serving; killed (if it is still running) on exit."""
    receiver = LiveReceiver(log_dir, redis_url, ops_port=ops_port, **settings)
    try:
        receiver.wait_until_serving()
        yield receiver
    finally:
        receiver.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def content_type(self) -> bytes:
        return self.headers.get(b"content-type", b"")


class ResponseReader:
    """Reads successive responses from one connection (pipelined answers may arrive in one segment)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._data = b""

    def next(self, *, head_request: bool = False) -> RawResponse | None:
        """The next final response (framed by Content-Length, as every answer of uvicorn and the receiver is).

        Interim 1xx answers (`100 Continue`) are skipped. None when the server closed the connection without
        answering. Raises `TimeoutError` (the socket's timeout) when it neither answers nor closes.
        """
        while True:
            while b"\r\n\r\n" not in self._data:
                chunk = _recv(self._sock)
                if not chunk:
                    assert not self._data, f"connection closed mid-response: {self._data!r}"
                    return None
                self._data += chunk
                assert len(self._data) < MAX_RESPONSE_BYTES, "response head too large"
            head, _, self._data = self._data.partition(b"\r\n\r\n")
            status_line, *header_lines = head.split(b"\r\n")
            version, status, *_ = status_line.split(b" ", 2)
            assert version == b"HTTP/1.1", status_line
            if not status.startswith(b"1"):
                break
        headers: dict[bytes, bytes] = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        # A response to HEAD declares the length of the body a GET would get, and has none.
        length = 0 if head_request else int(headers.get(b"content-length", b"0"))
        assert length < MAX_RESPONSE_BYTES
        while len(self._data) < length:
            chunk = _recv(self._sock)
            assert chunk, "connection closed mid-body"
            self._data += chunk
        body, self._data = self._data[:length], self._data[length:]
        return RawResponse(int(status), headers, body)


def read_response(sock: socket.socket, *, head_request: bool = False) -> RawResponse | None:
    """The first response on `sock` (see `ResponseReader.next`)."""
    return ResponseReader(sock).next(head_request=head_request)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        # The server may reset a connection it closed with unread request bytes still buffered.
        return b""


def exchange(port: int, request: bytes, *, timeout_s: float = 5.0) -> RawResponse | None:
    """Send raw `request` bytes on a fresh connection and read the first answer (None: closed unanswered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        # The server may answer early (413) and close while we are still sending: the answer may be there.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        return read_response(sock, head_request=request.startswith(b"HEAD "))
