"""Finds handler modules and imports them into a registry: built-ins (the event log, the WorkOS mirror), then
packaged plugins (entry point group `hookyard.handlers`), then the modules named in `HOOKYARD_HANDLERS`. Anything
that fails to import stops the worker at start with a message naming it."""

from __future__ import annotations

import importlib
import traceback
from importlib.metadata import entry_points

from processor.handlers import Registry, default_registry
from shared.errors import RegistrationError
from shared.settings import Settings

__all__ = ["ENTRY_POINT_GROUP", "load_handlers"]

ENTRY_POINT_GROUP = "hookyard.handlers"
BUILTIN_LOG_MODULE = "processor.builtins"
BUILTIN_MIRROR_MODULE = "processor.mirror.handlers"


def _import(module: str, origin: str, registry: Registry) -> None:
    registry.origin = origin
    try:
        importlib.import_module(module)
    except RegistrationError:
        raise
    except ImportError as exc:
        raise RegistrationError(f"cannot import handler module {module!r} ({origin}): {exc}") from exc
    except Exception as exc:  # a handler module's own error at import: name it, keep its traceback
        raise RegistrationError(
            f"handler module {module!r} ({origin}) raised {type(exc).__name__} at import: {exc}",
            detail=_traceback(exc),
        ) from exc
    finally:
        registry.origin = ""


def _traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


def load_handlers(settings: Settings, registry: Registry = default_registry) -> Registry:
    """Import every configured handler module; the decorators register into `registry`."""
    if settings.log_events:
        _import(BUILTIN_LOG_MODULE, "built-in (HOOKYARD_LOG_EVENTS)", registry)
    if settings.mirror_url:
        _import(BUILTIN_MIRROR_MODULE, "built-in (HOOKYARD_MIRROR_URL)", registry)
        importlib.import_module(BUILTIN_MIRROR_MODULE).bind(settings.mirror_url)
    for ep in entry_points(group=ENTRY_POINT_GROUP) if settings.entry_points else ():
        registry.origin = f"entry point {ep.name} = {ep.value}"
        try:
            loaded = ep.load()
        except ImportError as exc:
            raise RegistrationError(f"cannot load handler entry point {ep.name!r} ({ep.value}): {exc}") from exc
        except Exception as exc:  # as for modules above
            raise RegistrationError(
                f"handler entry point {ep.name!r} ({ep.value}) raised {type(exc).__name__} at import: {exc}",
                detail=_traceback(exc),
            ) from exc
        finally:
            registry.origin = ""
        if isinstance(loaded, Registry) and loaded is not registry:
            raise RegistrationError(
                f"entry point {ep.name!r} names a separate Registry: register with processor.handler instead"
            )
    for module in settings.handler_modules:
        _import(module, "HOOKYARD_HANDLERS", registry)
    return registry
