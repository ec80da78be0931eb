"""The `hookyard` command: run everything locally (`dev`), send signed sample events (`send`), and start the
production processes (`receiver`, `worker`).

This is the entry point that reads the process environment (once, in `main`); everything below it is handed
a plain mapping and goes through `Settings` for what Hookyard itself configures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeAlias

import httpx
import orjson

from processor.supervisor import ChildSpec, Supervisor
from shared.embedded_redis import EmbeddedRedis, free_port
from shared.errors import ConfigError, HookyardError
from shared.logging import configure_logging
from shared.samples import EVENT_TYPES, sample_event
from shared.settings import DEFAULT_SOURCE, Settings
from shared.signature import sign

__all__ = ["main"]

_Run: TypeAlias = Callable[[argparse.Namespace, dict[str, str]], int]
_Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# Files `hookyard dev` keeps in the data directory (HOOKYARD_DATA_DIR, default .hookyard).
SECRET_FILE = "webhook-secret"  # noqa: S105 - a file name, not a secret
REDIS_DIR = "redis"
REDIS_PORT_FILE = "redis.port"
REDIS_PID_FILE = "redis.pid"

# A child that dies this many times in a row right after starting (a port in use, a missing module) will not
# heal by itself: `hookyard dev` stops and says so instead of restarting it forever.
_DEV_GIVE_UP_AFTER = 5
_SEND_TIMEOUT_S = 10.0
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def main(argv: list[str] | None = None) -> int:
    """Run one `hookyard` verb; returns the process exit code (2 for a configuration error)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    run: _Run = args.run
    try:
        return run(args, environ)
    except ConfigError as exc:
        print(f"hookyard: configuration error: {exc.setting}: {exc.problem}", file=sys.stderr)
        return 2
    except HookyardError as exc:
        print(f"hookyard {args.verb}: {exc}", file=sys.stderr)
        return 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookyard",
        description="Receive WorkOS webhooks and dispatch them to handlers, in order, exactly once.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)
    for add_verb in _VERBS:
        add_verb(verbs)
    return parser


# --- hookyard dev ---------------------------------------------------------------------------------------------


def _add_dev(verbs: _Verbs) -> None:
    dev = verbs.add_parser(
        "dev",
        help="run Redis, the receiver and the worker locally (Ctrl-C stops all)",
        description=(
            "Run Hookyard locally: an embedded Redis (unless REDIS_URL is set), the receiver and the worker, "
            "restarted if they crash. Creates a development webhook secret in the data directory unless "
            "WORKOS_WEBHOOK_SECRET is set, and logs every event (HOOKYARD_LOG_EVENTS=true) unless told "
            "otherwise. Handler modules (HOOKYARD_HANDLERS) import from the current directory."
        ),
    )
    dev.add_argument("--workers", type=_positive_int, metavar="N", help="worker processes (HOOKYARD_WORKERS)")
    dev.add_argument("--port", type=_port, metavar="P", help="receiver port (HOOKYARD_PORT, default 8000)")
    dev.add_argument("--host", metavar="H", help="receiver address (HOOKYARD_HOST, default 127.0.0.1)")
    dev.set_defaults(run=_dev)


def _dev(args: argparse.Namespace, environ: dict[str, str]) -> int:
    env = _child_environment(environ)
    for name, value in (("HOOKYARD_HOST", args.host), ("HOOKYARD_PORT", args.port), ("HOOKYARD_WORKERS", args.workers)):
        if value is not None:
            env[name] = str(value)
    env.setdefault("HOOKYARD_LOG_EVENTS", "true")
    data_dir = Path(environ.get("HOOKYARD_DATA_DIR", "").strip() or ".hookyard")

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
        env["WORKOS_WEBHOOK_SECRET"], secret_created = _load_or_create_secret(secret_file)
    # Everything is validated before anything starts: a bad setting costs no Redis start and no restarts.
    settings = Settings.from_env(env)
    if _port_in_use(settings.host, settings.port):
        raise HookyardError(f"{settings.host}:{settings.port} is in use; choose another with --port or HOOKYARD_PORT")
    configure_logging(settings.log_level, settings.log_format)

    try:
        if redis is not None:
            redis.start()
            (data_dir / REDIS_PORT_FILE).write_text(f"{redis.port}\n")
            (data_dir / REDIS_PID_FILE).write_text(f"{redis.pid}\n")
            _say(f"Redis      {redis.url}  (embedded; data in {redis.data_dir})")
        else:
            _say(f"Redis      {_without_password(settings.redis_url)}  (REDIS_URL)")
        if secret_file is None:
            _say("Secret     from WORKOS_WEBHOOK_SECRET")
        elif secret_created:
            # Shown this once; later runs only say where it is.
            _say(f"Secret     {env['WORKOS_WEBHOOK_SECRET']}  (new; saved in {secret_file}, mode 0600)")
            _say(
                "           `hookyard send <event-type>` signs with it by itself; other senders need it as their secret"
            )
        else:
            _say(f"Secret     from {secret_file}  (`hookyard send` signs with it by itself)")
        _print_banner(settings, environ)
        supervisor = Supervisor(
            [
                ChildSpec("receiver", [sys.executable, "-m", "receiver"], env),
                ChildSpec("worker", [sys.executable, "-m", "processor"], env),
            ],
            # Longer than the worker's own stop (a lease plus margin, processor/main.py): it must be able to
            # stop its worker processes itself before anything is killed.
            grace_s=settings.lease_s + 10,
            give_up_after=_DEV_GIVE_UP_AFTER,
        )
        code = supervisor.run()
        if code != 0:
            print("hookyard dev: a process keeps exiting right after it starts; see its log above.", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        if redis is not None:
            # Redis goes last, once nothing can write to it any more; a late Ctrl-C must not cut its AOF flush.
            with _ignoring_interrupts():
                redis.stop()
                (data_dir / REDIS_PID_FILE).unlink(missing_ok=True)


def _print_banner(settings: Settings, environ: Mapping[str, str]) -> None:
    host = _client_host(settings.host)
    receiver = _webhook_url(settings.host, settings.port, DEFAULT_SOURCE)
    metrics = f"http://{host}:{settings.ops_port or settings.port}/metrics"
    send = "hookyard send dsync.user.created"
    # When --port/--host differ from what the shell's environment says, a plain `hookyard send` would miss.
    try:
        shell = _settings_without_redis(environ)
        send_default = _webhook_url(shell.host, shell.port, DEFAULT_SOURCE)
    except ConfigError:
        send_default = None
    if receiver != send_default:
        send += f" --url {receiver}"
    _say(f"Receiver   {receiver}")
    _say(f"Metrics    {metrics}  (worker: http://{host}:{settings.worker_metrics_port}/metrics)")
    _say(f"Try        {send}")
    _say(f"Workers    {settings.workers}; logging events: {settings.log_events}.  Ctrl-C stops everything.")


def _child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    # Handler modules (HOOKYARD_HANDLERS) live in the user's project: the children import from where
    # `hookyard` was started, whatever else PYTHONPATH says.
    env = dict(environ)
    paths = [os.getcwd(), *(p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _load_or_create_secret(path: Path) -> tuple[str, bool]:
    """The development secret in `path`, created (0600) on first use; True if it was just created."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        pass
    else:
        if secret:
            return secret, False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    # 0600 before a byte is written, so others never get to read it; fchmod covers an existing empty file,
    # which keeps its old mode through O_CREAT.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret, True


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
    try:
        pid = int((data_dir / REDIS_PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    if _is_redis_server(pid):
        raise HookyardError(
            f"redis-server (pid {pid}) from an earlier `hookyard dev` still runs on {data_dir / REDIS_DIR}; "
            f"stop it (kill {pid}) or remove {data_dir / REDIS_PID_FILE} if that pid is something else"
        )


def _is_redis_server(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): a live pid is taken at its word


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


# --- hookyard send --------------------------------------------------------------------------------------------


def _add_send(verbs: _Verbs) -> None:
    send = verbs.add_parser(
        "send",
        help="POST signed sample events (or a file) to a receiver",
        description=(
            "Build a realistic sample of EVENT_TYPE (or read --file), sign it as WorkOS does "
            "(WorkOS-Signature: t=<ms>, v1=<hmac>) and POST it. Prints one line per event: the status, the "
            "event id and the response body. Exits 0 only if every response was 200."
        ),
        epilog="event types: " + ", ".join(EVENT_TYPES),
    )
    send.add_argument("event_type", nargs="?", choices=EVENT_TYPES, metavar="EVENT_TYPE", help="what to send")
    send.add_argument(
        "--url", help="receiver URL (default http://HOOKYARD_HOST:HOOKYARD_PORT/webhooks/SOURCE: 127.0.0.1:8000)"
    )
    send.add_argument(
        "--secret",
        help="signing secret (default: the source's configured secret, e.g. WORKOS_WEBHOOK_SECRET, "
        "else the one `hookyard dev` saved in the data directory)",
    )
    send.add_argument("--source", default=DEFAULT_SOURCE, type=_source_name, help="sender name (default workos)")
    send.add_argument(
        "--count", type=_positive_int, default=1, metavar="N", help="events to send, each a new sample (default 1)"
    )
    send.add_argument(
        "--file",
        type=Path,
        metavar="F",
        help="send this file's bytes verbatim instead of a sample ('-' for stdin); with --count, resend them",
    )
    send.set_defaults(run=_send, parser=send)


def _send(args: argparse.Namespace, environ: dict[str, str]) -> int:
    if (args.event_type is None) == (args.file is None):
        args.parser.error("give an EVENT_TYPE or --file, not both")
    settings = _settings_without_redis(environ)
    url = args.url or _webhook_url(settings.host, settings.port, args.source)
    secret = (args.secret or _configured_secret(settings, args.source)).encode()
    raw = _read_body(args.file) if args.file is not None else None

    all_ok = True
    with httpx.Client(timeout=_SEND_TIMEOUT_S) as client:
        for _ in range(args.count):
            body = raw if raw is not None else orjson.dumps(sample_event(args.event_type))
            headers = {
                "Content-Type": "application/json",
                "WorkOS-Signature": sign(body, secret, int(time.time() * 1000)),
            }
            try:
                response = client.post(url, content=body, headers=headers)
            except httpx.ConnectError:
                print(f"hookyard send: cannot connect to {url} — is `make run` running?", file=sys.stderr)
                return 1
            except httpx.TimeoutException:
                print(f"hookyard send: {url} did not answer within {_SEND_TIMEOUT_S:g} s", file=sys.stderr)
                return 1
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                print(f"hookyard send: {url}: {exc}", file=sys.stderr)
                return 1
            text = " ".join(response.text.split())
            print(f"{response.status_code} {_event_id(body)} {text}", flush=True)
            all_ok &= response.status_code == 200
    return 0 if all_ok else 1


def _settings_without_redis(environ: Mapping[str, str]) -> Settings:
    # `send` never talks to Redis, but reads secrets, host, port and data dir exactly as the receiver does;
    # the placeholder only satisfies the one setting it does not need.
    env = dict(environ)
    if not env.get("REDIS_URL", "").strip():
        env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    return Settings.from_env(env, require_secret=False)


def _configured_secret(settings: Settings, source: str) -> str:
    now_ms = int(time.time() * 1000)
    config = settings.sources.get(source)
    if config is not None:
        valid = [s for s in config.secrets if s.expires_at_ms is None or now_ms < s.expires_at_ms]
        if valid:
            # During a rotation sign with the secret that stays valid longest: the new one.
            newest = max(valid, key=lambda s: float("inf") if s.expires_at_ms is None else s.expires_at_ms)
            return newest.value.decode()
    if source == DEFAULT_SOURCE:
        path = Path(settings.data_dir) / SECRET_FILE
        with contextlib.suppress(FileNotFoundError):
            saved = path.read_text().strip()
            if saved:
                return saved
        raise ConfigError(
            "WORKOS_WEBHOOK_SECRET",
            f"not set and no {path} to fall back on; pass --secret, or run `hookyard dev` once to create one",
        )
    setting = "HOOKYARD_SOURCE_" + source.upper().replace("-", "_") + "_SECRETS"
    raise ConfigError(setting, f"no valid secret for source {source!r}; set it or pass --secret")


def _webhook_url(host: str, port: int, source: str) -> str:
    return f"http://{_client_host(host)}:{port}/webhooks/{source}"


def _read_body(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HookyardError(f"cannot read {path}: {exc.strerror}") from None


def _event_id(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "-"
    event_id = document.get("id") if isinstance(document, dict) else None
    return event_id if isinstance(event_id, str) and event_id else "-"


# --- hookyard receiver / worker -------------------------------------------------------------------------------


def _add_receiver(verbs: _Verbs) -> None:
    receiver = verbs.add_parser(
        "receiver",
        help="run the receiver (production entry point: `python -m receiver`)",
        description="Replace this process with the receiver (`python -m receiver`); configured by environment.",
    )
    receiver.set_defaults(run=_exec_module("receiver"))


def _add_worker(verbs: _Verbs) -> None:
    worker = verbs.add_parser(
        "worker",
        help="run the worker processes (production entry point: `python -m processor`)",
        description="Replace this process with the worker (`python -m processor`); configured by environment.",
    )
    worker.set_defaults(run=_exec_module("processor"))


def _exec_module(module: str) -> _Run:
    def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
        # exec, not a child: the process manager's signals and exit code reach the server itself.
        argv = [sys.executable, "-m", module]
        os.execve(sys.executable, argv, _child_environment(environ))  # noqa: S606 - argv, no shell
        return 1  # pragma: no cover - execve does not return

    return run


# --- shared helpers -------------------------------------------------------------------------------------------


def _say(line: str) -> None:
    print(line, flush=True)


def _client_host(host: str) -> str:
    # A wildcard bind is reached through loopback; an IPv6 literal needs brackets in a URL.
    if host in ("0.0.0.0", ""):  # noqa: S104 - recognising a bind address, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:****@", url)


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 1 and 65535, got {value}")
    return value


def _source_name(raw: str) -> str:
    if not _SOURCE_NAME.match(raw):
        raise argparse.ArgumentTypeError(f"must match {_SOURCE_NAME.pattern}")
    return raw


# The verbs, in the order `hookyard --help` lists them. Extension point: a later verb (doctor, verify,
# events, dlq, stats, handlers) is an `_add_<verb>(verbs)` that registers its parser with
# `set_defaults(run=...)` (its body in a module of its own when it is more than a few lines), added here once
# it works; no placeholder verbs that pretend.
_VERBS: tuple[Callable[[_Verbs], None], ...] = (
    _add_dev,
    _add_send,
    _add_receiver,
    _add_worker,
)


if __name__ == "__main__":
    sys.exit(main())
