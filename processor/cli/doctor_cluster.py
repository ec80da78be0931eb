"""`hookyard doctor` on a Redis Cluster: every node, not just the one a command happened to reach, must keep what
it was given (AOF, `noeviction`), the cluster must serve every slot, and every primary needs the replicas that
HOOKYARD_MIN_REPLICAS waits for (without any, a primary's loss has no failover at all)."""

from __future__ import annotations

from typing import Any

import redis
import redis.cluster

from processor.cli.doctor import Check
from shared.settings import Settings

__all__ = ["check_cluster"]


def _slots_in_migration(node_client: redis.Redis) -> set[str]:
    """Slots this node marks as migrating or importing (`[slot->-id]`, `[slot-<-id]` in its own CLUSTER NODES line)."""
    raw = node_client.execute_command("CLUSTER", "NODES")  # type: ignore[no-untyped-call]
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    mine = next((line for line in text.splitlines() if "myself" in line), "")
    return {part.strip("[").split("-", 1)[0] for part in mine.split()[8:] if part.startswith("[")}


def check_cluster(client: redis.Redis, settings: Settings) -> Check:
    if not isinstance(client, redis.cluster.RedisCluster):
        return Check("cluster", "skip", "REDIS_URL names one server")
    primaries: list[str] = []
    weak: list[str] = []
    short: list[str] = []
    down: list[str] = []
    half_moved: set[str] = set()
    state = "?"
    for node in client.get_nodes():
        node_client = client.get_redis_connection(node)
        try:
            info: dict[str, Any] = node_client.info("replication")
            config = {**node_client.config_get("appendonly"), **node_client.config_get("maxmemory-policy")}
            if state == "?":
                raw = node_client.execute_command("CLUSTER", "INFO")
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                state = "ok" if "cluster_state:ok" in text else "fail"
            half_moved |= _slots_in_migration(node_client)
        except redis.RedisError:
            down.append(node.name)  # its primary (if it was a replica) shows one replica fewer below
            continue
        if config.get("appendonly") != "yes" or config.get("maxmemory-policy") != "noeviction":
            weak.append(node.name)
        if info.get("role") == "master":
            primaries.append(node.name)
            replicas = int(info.get("connected_slaves", 0))
            if replicas < max(1, settings.min_replicas):
                short.append(f"{node.name} has {replicas}")
    detail = f"{len(primaries)} primaries, cluster_state {state}"
    hints = []
    status = "ok"
    if state != "ok":
        status = "fail"
        hints.append("some slots are not served: `redis-cli --cluster check` and `--cluster fix`")
    if weak:
        status = "fail"
        hints.append(f"not durable (appendonly yes, maxmemory-policy noeviction needed): {', '.join(weak)}")
    if half_moved:
        # A migration that stopped half way (its source or target died, or redis-cli was interrupted): the slot's
        # keys may be split between two nodes, and events on it wait (logged as run.body_missing) until repaired.
        status = "fail"
        hints.append(
            f"slots left mid-migration: {', '.join(sorted(half_moved, key=int)[:10])} — finish or undo them "
            "(`redis-cli --cluster fix`, or CLUSTER SETSLOT … NODE on both nodes) before more traffic lands"
        )
    if down:
        status = "warn" if status == "ok" else status
        hints.append(f"not answering: {', '.join(down)}")
    if short:
        status = "fail" if settings.min_replicas else ("warn" if status == "ok" else status)
        need = settings.min_replicas or 1
        hints.append(f"primaries with fewer than {need} replica(s): {', '.join(short)}")
    return Check("cluster", status, detail, "; ".join(hints))
