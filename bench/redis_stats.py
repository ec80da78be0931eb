"""What Redis servers did over a stretch of time: `INFO commandstats` call counts and `INFO cpu` time, per node,
read before and after and subtracted. The readings' own INFO calls are left out of the counts, and the bench's
own polls (`discount`) are taken off the difference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import redis

__all__ = ["NodeUsage", "Snapshot", "snapshot"]

#: What the reading itself sends.
_OWN = frozenset({"info"})


@dataclass(frozen=True, slots=True)
class NodeUsage:
    """One node's commands (by name) and CPU seconds (used_cpu_sys + used_cpu_user) so far, and its memory."""

    port: int
    calls: Counter[str]
    cpu_s: float
    used_memory: int

    def minus(self, before: NodeUsage) -> NodeUsage:
        calls = Counter(self.calls)
        calls.subtract(before.calls)
        return NodeUsage(self.port, +calls, self.cpu_s - before.cpu_s, self.used_memory - before.used_memory)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


@dataclass(frozen=True, slots=True)
class Snapshot:
    nodes: dict[int, NodeUsage]

    def minus(self, before: Snapshot) -> Snapshot:
        return Snapshot({port: node.minus(before.nodes[port]) for port, node in self.nodes.items()})

    def discount(self, polls: dict[int, int], command: str) -> Snapshot:
        """This difference without `polls[port]` calls of `command` per node: the bench's own polling."""
        nodes = {}
        for port, node in self.nodes.items():
            calls = Counter(node.calls)
            calls[command] -= polls.get(port, 0)
            nodes[port] = NodeUsage(port, +calls, node.cpu_s, node.used_memory)
        return Snapshot(nodes)

    def total_calls(self, ports: Iterable[int]) -> int:
        return sum(self.nodes[port].total_calls for port in ports)

    def cpu_s(self, ports: Iterable[int]) -> float:
        return sum(self.nodes[port].cpu_s for port in ports)

    def calls(self, ports: Iterable[int]) -> Counter[str]:
        total: Counter[str] = Counter()
        for port in ports:
            total.update(self.nodes[port].calls)
        return total


def snapshot(ports: Iterable[int]) -> Snapshot:
    """Read every node on 127.0.0.1:`ports` now."""
    return Snapshot({port: _read(port) for port in ports})


def _read(port: int) -> NodeUsage:
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        stats = client.info("commandstats")
        cpu = client.info("cpu")
        memory = client.info("memory")
    finally:
        client.close()
    calls: Counter[str] = Counter()
    for name, values in stats.items():
        command = name.removeprefix("cmdstat_")
        if command.split("|")[0] not in _OWN:
            calls[command] = int(values["calls"])
    return NodeUsage(port, calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), int(memory["used_memory"]))
