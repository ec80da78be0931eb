"""The one error family of Hookyard; every error we raise on purpose is a `HookyardError`.

HookyardError
├── ConfigError            a setting is missing or invalid (the process refuses to start)
├── SignatureError         a delivery's WorkOS-Signature does not verify (`reason` says why)
├── EnvelopeError          a body is not a usable event envelope (`reason` says why)
├── WireFormatError        a queued message cannot be decoded
├── StoreUnavailable       Redis did not acknowledge a step (translated from redis-py errors)
├── EventsApiError         the WorkOS Events API refused a request (translated from the workos SDK's errors)
│   └── EventsApiUnavailable   ... or could not answer now (429, 5xx, no connection): try again later
└── RegistrationError      a handler or handler module cannot be registered
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ArchiveExpired",
    "ConfigError",
    "EnvelopeError",
    "EnvelopeReason",
    "EventsApiError",
    "EventsApiUnavailable",
    "HookyardError",
    "RegistrationError",
    "SignatureError",
    "SignatureReason",
    "StoreUnavailable",
    "WireFormatError",
]

SignatureReason = Literal["missing_header", "malformed_header", "stale", "future", "mismatch"]
EnvelopeReason = Literal["not_json", "not_object", "missing_id", "missing_event", "bad_data", "bad_created_at"]


class HookyardError(Exception):
    """Base class of every error Hookyard raises on purpose."""


class ConfigError(HookyardError):
    """A setting is missing or invalid; the message names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class SignatureError(HookyardError):
    """The signature header does not prove the body came from the sender, now."""

    def __init__(self, reason: SignatureReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: SignatureReason = reason
        self.detail = detail


class EnvelopeError(HookyardError):
    """The body is not an event envelope we can route: `{"id": str, "event": str, "data": {...}}`."""

    def __init__(self, reason: EnvelopeReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: EnvelopeReason = reason
        self.detail = detail


class WireFormatError(HookyardError):
    """A queued message is not in the format the receiver writes."""


class StoreUnavailable(HookyardError):
    """Redis did not acknowledge a step in time; the caller may retry, nothing was confirmed."""


class EventsApiError(HookyardError):
    """The WorkOS Events API refused a request (bad key, bad parameters): retrying the same request will not help."""


class EventsApiUnavailable(EventsApiError):
    """The Events API could not answer now (rate limited, a server error, unreachable). `retry_after_s` is the wait
    it asked for (`Retry-After`), if it said."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ArchiveExpired(HookyardError):
    """An event's archived bytes are past retention, so it cannot be inspected or replayed."""


class RegistrationError(HookyardError):
    """A handler, its options, or a handler module cannot be registered. `detail` carries the traceback of a
    module that raised at import, to be shown once."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
