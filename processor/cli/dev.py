"""`hookyard dev`: run everything locally — an embedded Redis (unless `REDIS_URL` is set), the receiver and the
worker, supervised — with a development webhook secret kept in the data directory."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from processor.cli.arguments import Verbs, port, positive_int
from processor.cli.context import (
    dev_data_dir,
    metrics_url,
    settings_without_redis,
    webhook_url,
    without_password,
)
from processor.cli.devstate import (
    REDIS_DIR,
    REDIS_PID_FILE,
    REDIS_PORT_FILE,
    SECRET_FILE,
    DevStack,
    forget_stack,
    load_or_create_secret,
    record_stack,
    running_redis_pid,
)
from processor.cli.mirror import dev_mirror_url, migrate_mirror
from processor.cli.render import say, warn
from processor.devtools.embedded_redis import EmbeddedRedis, free_port
from processor.startup import EXIT_CONFIG_ERROR
from processor.supervisor import ChildSpec, Supervisor
from shared.errors import ConfigError, HookyardError
from shared.logging import configure_logging
from shared.redis_clients import unreachable
from shared.settings import DEFAULT_SOURCE, Settings

__all__ = ["add_parser", "child_environment"]

# A child that dies this many times in a row right after starting (a port in use, a missing module) will not
# heal by itself: `hookyard dev` stops and says so instead of restarting it forever.
_DEV_GIVE_UP_AFTER = 5
# How often the embedded Redis is looked at, and the longest wait between two attempts to restart it.
_REDIS_WATCH_S = 0.2
_REDIS_RETRY_MAX_S = 5.0
# The settings that make up the stack's addresses: recorded, so verbs in another terminal reach this stack.
_ADDRESS_SETTINGS = ("HOOKYARD_HOST", "HOOKYARD_PORT", "HOOKYARD_OPS_PORT", "HOOKYARD_WORKER_METRICS_PORT")


def add_parser(verbs: Verbs) -> None:
    dev = verbs.add_parser(
        "dev",
        help="run Redis, the receiver and a worker locally",
        description=(
            "Run Hookyard locally: an embedded Redis (unless REDIS_URL is set), the receiver and the worker, "
            "restarted if they crash. Creates a development webhook secret in the data directory unless "
            "WORKOS_WEBHOOK_SECRET is set, and logs every event (HOOKYARD_LOG_EVENTS=true) unless told "
            "otherwise. Handler modules (HOOKYARD_HANDLERS) import from the current directory."
        ),
    )
    dev.add_argument("--workers", type=positive_int, metavar="N", help="worker processes (HOOKYARD_WORKERS)")
    dev.add_argument("--port", type=port, metavar="P", help="receiver port (HOOKYARD_PORT, default 8000)")
    dev.add_argument("--host", metavar="H", help="receiver address (HOOKYARD_HOST, default 127.0.0.1)")
    dev.set_defaults(run=_dev)


def _dev(args: argparse.Namespace, environ: dict[str, str]) -> int:
    env = child_environment(environ)
    for name, value in (("HOOKYARD_HOST", args.host), ("HOOKYARD_PORT", args.port), ("HOOKYARD_WORKERS", args.workers)):
        if value is not None:
            env[name] = str(value)
    env.setdefault("HOOKYARD_LOG_EVENTS", "true")
    data_dir = dev_data_dir(environ)
    # The WorkOS mirror is on in dev, in a SQLite file beside Redis's; HOOKYARD_MIRROR_URL= (empty) turns it off.
    env.setdefault("HOOKYARD_MIRROR_URL", dev_mirror_url(data_dir))

    redis: EmbeddedRedis | None = None
    if not environ.get("REDIS_URL", "").strip():
        _refuse_a_second_redis(data_dir)
        # Absolute: redis-server chdirs into --dir before it opens --logfile, so a relative path would miss.
        redis = EmbeddedRedis((data_dir / REDIS_DIR).absolute(), port=_redis_port(data_dir))
        env["REDIS_URL"] = redis.url
    secret_file: Path | None = None
    secret_created = False
    if not environ.get("WORKOS_WEBHOOK_SECRET", "").strip():
        secret_file = data_dir / SECRET_FILE
        env["WORKOS_WEBHOOK_SECRET"], secret_created = load_or_create_secret(secret_file)
    # Everything is validated before anything starts: a bad setting costs no Redis start and no restarts.
    settings = Settings.from_env(env)
    if _port_in_use(settings.host, settings.port):
        raise HookyardError(f"{settings.host}:{settings.port} is in use; choose another with --port or HOOKYARD_PORT")
    if redis is None:
        # A Redis of the user's that cannot be reached now would give a banner, then 503s and errors forever.
        problem = unreachable(settings.redis_url)
        if problem is not None:
            raise HookyardError(problem)
    configure_logging(settings.log_level, settings.log_format)

    keeper: _RedisKeeper | None = None
    try:
        if redis is not None:
            redis.start()
            (data_dir / REDIS_PORT_FILE).write_text(f"{redis.port}\n")
            (data_dir / REDIS_PID_FILE).write_text(f"{redis.pid}\n")
            keeper = _RedisKeeper(redis, data_dir / REDIS_PID_FILE)
            keeper.start()
            say(f"Redis      {redis.url}  (embedded; data in {redis.data_dir})")
        else:
            say(f"Redis      {without_password(settings.redis_url)}  (REDIS_URL)")
        _record_stack(data_dir, settings, env)
        if settings.mirror_url:
            data_dir.mkdir(parents=True, exist_ok=True)
            migrate_mirror(settings.mirror_url)
            say(f"Mirror     {without_password(settings.mirror_url)}  (migrated; `hookyard orgs` reads it)")
        if secret_file is None:
            say("Secret     from WORKOS_WEBHOOK_SECRET")
        elif secret_created:
            # Shown this once; later runs only say where it is.
            say(f"Secret     {env['WORKOS_WEBHOOK_SECRET']}  (new; saved in {secret_file}, mode 0600)")
            say(
                "           `hookyard send <event-type>` signs with it by itself; other senders need it as their secret"
            )
        else:
            say(f"Secret     from {secret_file}  (`hookyard send` signs with it by itself)")
        _print_banner(settings, environ)
        supervisor = Supervisor(
            [
                ChildSpec("receiver", [sys.executable, "-m", "receiver"], env),
                ChildSpec("worker", [sys.executable, "-m", "processor"], env),
            ],
            # Longer than the worker's own stop (a lease plus margin, processor/fleet.py): it must be able to
            # stop its worker processes itself before anything is killed.
            grace_s=settings.lease_s + 10,
            give_up_after=_DEV_GIVE_UP_AFTER,
            # A configuration error (a bad setting, a handler module that fails to import) was said once
            # already, with its traceback: restarting would only say it again.
            final_exit_codes=frozenset({EXIT_CONFIG_ERROR}),
        )
        code = supervisor.run()
        if code != 0:
            print("hookyard dev: stopped: a process failed (see the lines above).", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        forget_stack(data_dir)
        if keeper is not None:
            keeper.close()
        if redis is not None:
            # Redis goes last, once nothing can write to it any more; a late Ctrl-C must not cut its AOF flush.
            with _ignoring_interrupts():
                redis.stop()
                (data_dir / REDIS_PID_FILE).unlink(missing_ok=True)


class _RedisKeeper(threading.Thread):
    """Restarts the embedded Redis when it dies, on the same port and data directory (so with its AOF): the
    receiver and the workers reconnect by themselves, as they would to any Redis that came back."""

    def __init__(self, redis: EmbeddedRedis, pid_file: Path) -> None:
        super().__init__(name="redis-keeper", daemon=True)
        self._redis = redis
        self._pid_file = pid_file
        self._closed = threading.Event()
        # Held while restarting: `close` must not return (and Redis be stopped) while a start is under way.
        self._lock = threading.Lock()

    def run(self) -> None:
        delay = _REDIS_WATCH_S
        # How the server last exited, while it is down: a failed start (one that timed out leaves no process
        # behind) is tried again after a growing delay, and said once.
        down: str | None = None
        while not self._closed.wait(delay):
            with self._lock:
                if self._closed.is_set():
                    return
                process = self._redis.process
                if down is None:
                    if process is None or process.poll() is None:
                        continue
                    down = _exit_description(process.returncode)
                try:
                    self._redis.start()
                except HookyardError as exc:
                    if delay == _REDIS_WATCH_S:
                        warn(f"hookyard dev: embedded Redis exited ({down}) and does not restart: {exc}; trying again")
                    delay = min(delay * 2, _REDIS_RETRY_MAX_S)
                    continue
                self._pid_file.write_text(f"{self._redis.pid}\n")
                warn(
                    f"hookyard dev: embedded Redis exited ({down}); restarted on port {self._redis.port} "
                    "with the same data"
                )
                down, delay = None, _REDIS_WATCH_S

    def close(self) -> None:
        with self._lock:
            self._closed.set()
        self.join()


def _exit_description(returncode: int) -> str:
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


def _record_stack(data_dir: Path, settings: Settings, env: Mapping[str, str]) -> None:
    host = settings.host
    stack = DevStack(
        pid=os.getpid(),
        receiver_url=webhook_url(host, settings.port, DEFAULT_SOURCE),
        metrics_url=metrics_url(host, settings.ops_port or settings.port),
        worker_metrics_url=metrics_url(host, settings.worker_metrics_port),
        # Masked: the file is for reading by anyone who may read the data directory.
        redis_url=without_password(settings.redis_url),
        settings={name: env[name] for name in _ADDRESS_SETTINGS if env.get(name, "").strip()},
    )
    record_stack(data_dir, stack)


def _print_banner(settings: Settings, environ: Mapping[str, str]) -> None:
    receiver = webhook_url(settings.host, settings.port, DEFAULT_SOURCE)
    metrics = metrics_url(settings.host, settings.ops_port or settings.port)
    worker_metrics = metrics_url(settings.host, settings.worker_metrics_port)
    send = "hookyard send dsync.user.created"
    # When --port/--host differ from what the shell's environment says, a plain `hookyard send` would miss.
    try:
        shell = settings_without_redis(environ)
        send_default = webhook_url(shell.host, shell.port, DEFAULT_SOURCE)
    except ConfigError:
        send_default = None
    if receiver != send_default:
        send += f" --url {receiver}"
    say(f"Receiver   {receiver}")
    say(f"Metrics    {metrics}  (worker: {worker_metrics})")
    say(f"Try        {send}")
    say("Inspect    hookyard stats · hookyard events list · hookyard dlq list · hookyard doctor")
    say(f"Workers    {settings.workers}; logging events: {settings.log_events}.  Ctrl-C stops everything.")


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    # Handler modules (HOOKYARD_HANDLERS) live in the user's project: the children import from where
    # `hookyard` was started, whatever else PYTHONPATH says.
    env = dict(environ)
    paths = [os.getcwd(), *(p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _redis_port(data_dir: Path) -> int:
    # The same port as last time when it is free, so REDIS_URL stays the same across restarts of `dev`.
    try:
        port = int((data_dir / REDIS_PORT_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return free_port()
    if 1024 <= port <= 65535 and not _port_in_use("127.0.0.1", port):
        return port
    return free_port()


def _refuse_a_second_redis(data_dir: Path) -> None:
    # Two servers appending to one AOF directory would corrupt it: a server left over by a killed `dev`
    # must be stopped first.
    pid = running_redis_pid(data_dir)
    if pid is not None:
        raise HookyardError(
            f"redis-server (pid {pid}) from an earlier `hookyard dev` still runs on {data_dir / REDIS_DIR}; "
            f"stop it (kill {pid}) or remove {data_dir / REDIS_PID_FILE} if that pid is something else"
        )


def _port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT from the last run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
