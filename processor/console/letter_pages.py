"""Dead letters (and skipped late events): grouped by handler and error, each with its traceback; replay one, a
selection or a whole group (in key order, with progress), purge after a confirmation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from processor import deadletters
from processor.cli.context import open_store
from processor.console.actions import audit, authorized_form
from processor.console.guard import Access
from processor.console.rendering import console_of, page
from processor.deadletters import Kind, Letter
from shared.clock import wall_ms

if TYPE_CHECKING:
    from processor.console.app import Console

__all__ = ["ROUTES"]

#: Letters one page reads and groups, the newest first: a page over a large dead-letter set stays cheap (the total
#: comes from the shards' counts; actions on a group or on all letters still select from every letter).
PAGE_LETTERS = 200


Counts = dict[str, int]


@dataclass(slots=True)
class Group:
    handler: str
    error_type: str
    letters: list[Letter] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.handler}|{self.error_type}"


def _kind(raw: object) -> Kind:
    return "skipped" if raw == "skipped" else "dead"


def _groups(letters: list[Letter]) -> list[Group]:
    found: dict[tuple[str, str], Group] = {}
    for letter in letters:
        key = (letter.handler, letter.record.error_type)
        found.setdefault(key, Group(*key)).letters.append(letter)
    return sorted(found.values(), key=lambda g: (-len(g.letters), g.handler, g.error_type))


async def letters(request: Request) -> Response:
    console: Console = console_of(request)
    kind = _kind(request.query_params.get("kind"))
    found = await run_in_threadpool(deadletters.list_letters, console.client, kind, newest=PAGE_LETTERS)
    total = await run_in_threadpool(deadletters.count_letters, console.client, kind)
    return page(
        request,
        "letters.html",
        kind=kind,
        groups=_groups(found),
        shown=len(found),
        total=total,
        notice=request.query_params.get("notice"),
    )


def _selected(console: Console, form: FormData) -> tuple[Kind, list[Letter], dict[str, object]]:
    """The letters a form names: `letter` fields (kind|member), a `group` (handler|error type), or `all`."""
    kind = _kind(form.get("kind"))
    every = deadletters.list_letters(console.client, kind)
    members = {str(value) for value in form.getlist("letter")}
    group = str(form.get("group") or "")
    if members:
        chosen = [x for x in every if x.member in members]
        what: dict[str, object] = {"letters": len(members)}
    elif group:
        handler, _, error_type = group.partition("|")
        chosen = [x for x in every if x.handler == handler and x.record.error_type == error_type]
        what = {"handler": handler, "error_type": error_type}
    elif form.get("all") == "yes":
        chosen, what = every, {"all": True}
    else:
        chosen, what = [], {}
    return kind, chosen, what


@dataclass(frozen=True, slots=True)
class _Action:
    console: Console
    form: FormData
    access: Access
    kind: Kind
    chosen: list[Letter]
    what: dict[str, object]


async def _authorized(request: Request, action: str) -> _Action | Response:
    """The letters an action's form selects, once the request may act; else the refusal to answer."""
    console: Console = console_of(request)
    checked = await authorized_form(request, action)
    if isinstance(checked, Response):
        return checked
    form, access = checked
    kind, chosen, what = await run_in_threadpool(_selected, console, form)
    return _Action(console, form, access, kind, chosen, what)


async def replay(request: Request) -> Response:
    act = await _authorized(request, "replay")
    if isinstance(act, Response):
        return act
    console, access, kind, chosen, what = act.console, act.access, act.kind, act.chosen, act.what
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(_progress(console, access, kind, chosen, what), media_type="text/event-stream")
    with _audited_replay(access, kind, chosen, what) as counts:
        async for _letter, result in iterate_in_threadpool(_replayed(console, chosen)):
            counts[result] += 1
    notice = f"replayed {counts['replayed']} of {len(chosen)}"
    return RedirectResponse(request.url_for("letters").include_query_params(kind=kind, notice=notice), 303)


def _replayed(console: Console, chosen: list[Letter]) -> Iterator[tuple[Letter, str]]:
    store = open_store(console.client, console.settings)
    return iter(deadletters.replay_each(store, chosen, wall_ms))


async def _progress(
    console: Console, access: Access, kind: Kind, chosen: list[Letter], what: dict[str, object]
) -> AsyncIterator[str]:
    with _audited_replay(access, kind, chosen, what) as counts:
        done = 0
        async for letter, result in iterate_in_threadpool(_replayed(console, chosen)):
            done += 1
            counts[result] += 1
            report = {"done": done, "total": len(chosen), "event_id": letter.event_id, "result": result}
            yield f"event: progress\ndata: {orjson.dumps(report).decode()}\n\n"
    summary = {"total": len(chosen), **counts}
    yield f"event: done\ndata: {orjson.dumps(summary).decode()}\n\n"


@contextmanager
def _audited_replay(access: Access, kind: Kind, chosen: list[Letter], what: dict[str, object]) -> Iterator[Counts]:
    """An audit line with the selection before replaying, and one with the counts however it ends: `ok`,
    `interrupted` (the client left a streamed replay: cancelled or closed mid-way) or `error`."""
    audit(access, "replay", "started", kind=kind, selected=len(chosen), **what)
    counts: Counts = defaultdict(int)
    outcome = "ok"
    try:
        yield counts
    except Exception:
        outcome = "error"
        raise
    except BaseException:
        outcome = "interrupted"
        raise
    finally:
        audit(access, "replay", outcome, kind=kind, selected=len(chosen), **counts, **what)


async def purge(request: Request) -> Response:
    act = await _authorized(request, "purge")
    if isinstance(act, Response):
        return act
    console, form, access, kind, chosen, what = act.console, act.form, act.access, act.kind, act.chosen, act.what
    if form.get("confirm") != "yes":
        # Deleting is forever: show what would go, and ask. The confirmation names those letters one by one,
        # so a letter set aside after this page (in the same group, or at all) is not purged with them.
        return page(request, "confirm_purge.html", kind=kind, chosen=chosen)
    purged = await run_in_threadpool(deadletters.purge, console.client, chosen)
    audit(access, "purge", "ok", kind=kind, selected=len(chosen), purged=purged, **what)
    notice = f"purged {purged} of {len(chosen)}"
    return RedirectResponse(request.url_for("letters").include_query_params(kind=kind, notice=notice), 303)


ROUTES = [
    Route("/dead-letters", letters, name="letters"),
    Route("/dead-letters/replay", replay, methods=["POST"], name="replay"),
    Route("/dead-letters/purge", purge, methods=["POST"], name="purge"),
]
