"""Comparing the handler sets live workers publish: the most common set is A, a handler loaded the same way
everywhere is one variant, and workers that publish nothing are kept apart."""

from __future__ import annotations

from typing import Any

from processor.cli.handler_sets import compare
from processor.stats import WorkerInfo, parse_worker_info


def handler(name: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "patterns": ["*"], "max_attempts": 8, **options}


def test_workers_with_the_same_handlers_and_version_agree() -> None:
    same = (handler("a"), handler("b"))

    live = compare({"w:2": WorkerInfo(handlers=same, hookyard="1"), "w:1": WorkerInfo(handlers=same, hookyard="1")})

    assert live.agree
    [only] = live.sets
    assert (only.label, only.workers) == ("A", ("w:1", "w:2"))
    assert live.variants() == [(handler("a"), ("A",)), (handler("b"), ("A",))]


def test_sets_are_labelled_from_the_most_common_and_variants_name_their_sets() -> None:
    old = (handler("a"), handler("b"))
    new = (handler("a"), handler("b", max_attempts=3), handler("c"))

    live = compare(
        {
            "new:1": WorkerInfo(handlers=new),
            "old:1": WorkerInfo(handlers=old),
            "old:2": WorkerInfo(handlers=old),
            "legacy:1": WorkerInfo(),
        }
    )

    assert not live.agree
    assert [(s.label, s.workers) for s in live.sets] == [("A", ("old:1", "old:2")), ("B", ("new:1",))]
    assert live.silent == ("legacy:1",)
    assert live.workers == 4
    assert [(h["name"], h["max_attempts"], labels) for h, labels in live.variants()] == [
        ("a", 8, ("A", "B")),
        ("b", 8, ("A",)),
        ("b", 3, ("B",)),
        ("c", 8, ("B",)),
    ]
    assert live.workers_of(("A", "B")) == ["old:1", "old:2", "new:1"]


def test_a_record_without_handlers_still_gives_its_counters() -> None:
    assert parse_worker_info(b'{"abandoned": 2, "threads": 8}') == WorkerInfo(abandoned=2, threads=8)
    assert parse_worker_info(b'{"abandoned": 1, "handlers": [{"no": "name"}]}') == WorkerInfo(abandoned=1)
    assert parse_worker_info(b"not json") == WorkerInfo()
