"""The handler API: plain functions registered on a `Registry` with `@handler("dsync.user.*", ...)`.

    from processor import Event, handler

    @handler("dsync.user.*", order_by="resource", max_attempts=8)
    def sync_user(event: Event) -> None: ...

Options are validated when the decorator runs, so a bad option stops the worker at start, naming the handler.
"""

from __future__ import annotations

import fnmatch
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict, TypeVar, Unpack

from processor.event import Event
from processor.ordering import NO_ORDERING, OrderBy, OrderingKeyFn, key_function
from shared.errors import HookyardError, RegistrationError

__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_TIMEOUT_S",
    "HandlerFn",
    "HandlerOptions",
    "HandlerSpec",
    "Registry",
    "RetryLater",
    "Unprocessable",
    "default_registry",
    "handler",
]

HandlerFn = Callable[[Event], None] | Callable[[Event], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])
LatePolicy = Literal["deliver", "skip"]

#: How long one handler call may run before it counts as a failed attempt (`HandlerTimeout`).
DEFAULT_TIMEOUT_S = 300.0

_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:<>-]{0,199}$")


class RetryLater(HookyardError):
    """Raise from a handler to be called again for this event after `seconds` (counts as an attempt)."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {seconds} s")
        if seconds < 0:
            raise ValueError("RetryLater seconds must be >= 0")
        self.seconds = float(seconds)


class Unprocessable(HookyardError):
    """Raise from a handler when this event can never be handled (it is malformed for this handler): it becomes
    a dead letter at once, without the retries a passing failure gets."""


class HandlerOptions(TypedDict, total=False):
    """The options `@handler(...)` and `Registry.register` take (docs/handlers.md)."""

    name: str | None
    order_by: OrderBy
    late: LatePolicy
    max_attempts: int
    min_backoff: float
    max_backoff: float
    timeout: float


#: Each option's default, in one place.
DEFAULT_OPTIONS: Final[HandlerOptions] = {
    "name": None,
    "order_by": "resource",
    "late": "deliver",
    "max_attempts": 8,
    "min_backoff": 1.0,
    "max_backoff": 600.0,
    "timeout": DEFAULT_TIMEOUT_S,
}


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """A registered handler and its delivery options."""

    name: str
    patterns: tuple[str, ...]
    func: HandlerFn = field(repr=False)
    order_by: OrderBy
    late: LatePolicy
    max_attempts: int
    min_backoff_s: float
    max_backoff_s: float
    timeout_s: float
    origin: str
    is_async: bool
    key_fn: OrderingKeyFn = field(repr=False)
    _regex: re.Pattern[str] = field(repr=False)

    @property
    def ordered(self) -> bool:
        return self.order_by != NO_ORDERING

    def matches(self, event_type: str) -> bool:
        return self._regex.match(event_type) is not None

    def ordering_key(self, event: Event) -> str:
        return self.key_fn(event)

    def options(self) -> HandlerOptions:
        """The options as `Registry.register` takes them (to register the same handler elsewhere)."""
        return {
            "name": self.name,
            "order_by": self.order_by,
            "late": self.late,
            "max_attempts": self.max_attempts,
            "min_backoff": self.min_backoff_s,
            "max_backoff": self.max_backoff_s,
            "timeout": self.timeout_s,
        }


def _check_known(options: HandlerOptions) -> None:
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        # A misspelt option is a programming error, as a misspelt keyword argument would be.
        raise TypeError(f"unknown handler option(s) {sorted(unknown)}; see docs/handlers.md")


def _check_pattern(pattern: object) -> str:
    if not isinstance(pattern, str) or not _PATTERN.match(pattern) or pattern.count("[") != pattern.count("]"):
        raise RegistrationError(f"bad event pattern {pattern!r}: use a glob such as 'dsync.user.*' or '*'")
    return pattern


class Registry:
    """Handlers by name, and which of them match an event type (cached per type)."""

    def __init__(self) -> None:
        self._handlers: dict[str, HandlerSpec] = {}
        self._by_type: dict[str, tuple[HandlerSpec, ...]] = {}
        self.origin = ""

    def handler(self, *patterns: str, **options: Unpack[HandlerOptions]) -> Callable[[F], F]:
        """Register the decorated function (sync or async, taking one `Event`) for events matching `patterns`."""
        _check_known(options)

        def decorate(func: F) -> F:
            self.register(func, patterns, **options)
            return func

        return decorate

    def register(
        self, func: Callable[..., Any], patterns: tuple[str, ...] | list[str], **options: Unpack[HandlerOptions]
    ) -> HandlerSpec:
        _check_known(options)
        chosen: HandlerOptions = {**DEFAULT_OPTIONS, **options}
        name, order_by, late = chosen["name"], chosen["order_by"], chosen["late"]
        max_attempts, min_backoff, max_backoff = chosen["max_attempts"], chosen["min_backoff"], chosen["max_backoff"]
        timeout = chosen["timeout"]
        label = name or f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
        where = f"handler {label!r}"
        if not callable(func):
            raise RegistrationError(f"{where}: not callable")
        if not patterns:
            raise RegistrationError(f"{where}: give at least one event pattern, e.g. @handler('*')")
        checked = tuple(_check_pattern(p) for p in patterns)
        if not _NAME.match(label):
            raise RegistrationError(f"{where}: name must match {_NAME.pattern}")
        try:
            key_fn = key_function(order_by)
        except ValueError as exc:
            raise RegistrationError(f"{where}: {exc}") from None
        if late not in ("deliver", "skip"):
            raise RegistrationError(f"{where}: late must be 'deliver' or 'skip', got {late!r}")
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or not 1 <= max_attempts <= 1000:
            raise RegistrationError(f"{where}: max_attempts must be an integer from 1 to 1000")
        if not 0 <= min_backoff <= max_backoff:
            raise RegistrationError(f"{where}: need 0 <= min_backoff <= max_backoff")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 86400:
            raise RegistrationError(f"{where}: timeout must be a number of seconds, above 0 and at most 86400")
        if label in self._handlers:
            raise RegistrationError(f"{where}: a handler with this name is already registered")
        regex = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in checked))
        spec = HandlerSpec(
            name=label,
            patterns=checked,
            func=func,
            order_by=order_by,
            late=late,
            max_attempts=max_attempts,
            min_backoff_s=float(min_backoff),
            max_backoff_s=float(max_backoff),
            timeout_s=float(timeout),
            origin=self.origin,
            is_async=inspect.iscoroutinefunction(func),
            key_fn=key_fn,
            _regex=regex,
        )
        self._handlers[label] = spec
        self._by_type.clear()
        return spec

    def matching(self, event_type: str) -> tuple[HandlerSpec, ...]:
        found = self._by_type.get(event_type)
        if found is None:
            found = tuple(h for h in self._handlers.values() if h.matches(event_type))
            self._by_type[event_type] = found
        return found

    def get(self, name: str) -> HandlerSpec | None:
        return self._handlers.get(name)

    def __iter__(self) -> Any:
        return iter(self._handlers.values())

    def __len__(self) -> int:
        return len(self._handlers)

    def clear(self) -> None:
        self._handlers.clear()
        self._by_type.clear()


#: The registry `@handler` writes to; handler modules are imported into it at worker start.
default_registry = Registry()
handler = default_registry.handler
