"""A private RabbitMQ node (Debian's `rabbitmq-server`) for the test suite and for `make run` users who want their
wake-ups on RabbitMQ: its own node name, ports, files and Erlang cookie, so it never meets a system node.

Only epmd (Erlang's port mapper, one per machine) is shared, which is what it is for. No plugin is enabled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pika
import pika.exceptions

from processor.devtools.embedded_redis import free_port
from shared.errors import HookyardError

__all__ = ["PrivateRabbitmq", "rabbitmq_scripts"]

#: Debian installs the real scripts here; /usr/sbin holds wrappers that switch to the `rabbitmq` user and its
#: system-wide files, which a private node must not use.
_SCRIPTS_DIR = Path("/usr/lib/rabbitmq/bin")


def rabbitmq_scripts() -> Path | None:
    """The directory of rabbitmq-server and rabbitmqctl, or None when RabbitMQ is not installed."""
    if (_SCRIPTS_DIR / "rabbitmq-server").exists():
        return _SCRIPTS_DIR
    found = shutil.which("rabbitmq-server")
    return Path(found).resolve().parent if found else None


class PrivateRabbitmq:
    """Start, stop, pause and resume one RabbitMQ node listening on 127.0.0.1 only."""

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        scripts = rabbitmq_scripts()
        if scripts is None:
            raise HookyardError("rabbitmq-server is not installed (Debian package rabbitmq-server)")
        self.scripts = scripts
        self.base_dir = base_dir.resolve()
        self.port = port or free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:  # two free ports, not one port twice
            self.dist_port = free_port()
        self.node = f"hookyard-{self.port}@localhost"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def env(self) -> dict[str, str]:
        base = self.base_dir
        return {
            **os.environ,
            # HOME holds the Erlang cookie: a private one, so no other node's tools can talk to ours by accident.
            "HOME": str(base),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }

    def start(self, timeout_s: float = 60.0) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # guest may connect from loopback only, which is all this node listens on.
        (self.base_dir / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        (self.base_dir / "enabled_plugins").write_text("[].\n")
        log = (self.base_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(self.scripts / "rabbitmq-server")],
            env=self.env,
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self.process.poll() is not None:
                said = (self.base_dir / "server.log").read_text(errors="replace").strip().splitlines()[-12:]
                raise HookyardError("rabbitmq-server exited at start:\n" + "\n".join(said))
            if time.monotonic() > deadline:
                self.stop()
                raise HookyardError(f"RabbitMQ node {self.node} did not accept AMQP connections in time")
            time.sleep(0.1)  # polling interval of a deadline-bounded wait

    def answers(self) -> bool:
        """Whether the node accepts an AMQP connection now (the same test a worker's connect makes)."""
        params = pika.URLParameters(self.url + "?connection_attempts=1&socket_timeout=1&stack_timeout=2")
        try:
            connection = pika.BlockingConnection(params)
        except pika.exceptions.AMQPError:
            return False
        connection.close()
        return True

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): it keeps its sockets open but answers nothing, as a hung host would."""
        os.killpg(self._group(), signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self._group(), signal.SIGCONT)

    def stop(self, timeout_s: float = 30.0) -> None:
        """A clean stop (`rabbitmqctl stop`), then whatever is left of the process group is killed."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGCONT)  # a paused node cannot stop
            subprocess.run(
                [str(self.scripts / "rabbitmqctl"), "-n", self.node, "stop"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
            )
            with contextlib.suppress(subprocess.TimeoutExpired):  # then it is killed below
                process.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError):  # the group is gone already: the clean stop worked
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _group(self) -> int:
        if self.process is None:
            raise HookyardError("the RabbitMQ node is not running")
        return self.process.pid

    def __enter__(self) -> PrivateRabbitmq:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    """`python -m processor.devtools.rabbitmq [DIR]`: run a private node until Ctrl-C, for trying the RabbitMQ
    broker with `make run` (`HOOKYARD_BROKER_URL=<the URL printed> make run` in another terminal)."""
    base = Path(sys.argv[1] if len(sys.argv) > 1 else ".hookyard/rabbitmq")
    node = PrivateRabbitmq(base)
    started = time.monotonic()
    node.start()
    print(f"RabbitMQ node {node.node} ready in {time.monotonic() - started:.1f} s; files in {base}", flush=True)
    print(f"HOOKYARD_BROKER_URL={node.url}", flush=True)
    try:
        while node.running:
            time.sleep(1)  # the node runs until Ctrl-C; nothing to poll but its exit
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
