"""What one chaos run does: its load, its chosen keys and its faults, with the two sizes `make chaos` and the
smoke test use. Every duration the faults need is derived here from the processor settings the run starts with."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["CLUSTER_FAULTS", "EXTRA_FAULTS", "FAULTS", "SIZES", "Plan"]

#: The nemesis proper, in the order it applies them (see chaos/run.py).
FAULTS = ("future", "hang", "kill", "stop-worker", "stop-redis")
#: The older crash faults, run between stop-worker and stop-redis when asked for.
EXTRA_FAULTS = ("kill-ingester", "restart-receiver", "restart-redis")
#: On a Redis Cluster (`--store cluster`): a primary SIGKILLed while its replica takes over, another SIGSTOPped
#: until its replica took over (then resumed, to rejoin as a replica), and slots (an inbox shard's and state
#: shards') moved live to another primary. They replace the one-server Redis faults.
CLUSTER_FAULTS = ("failover", "freeze-primary", "migrate")


@dataclass(frozen=True, slots=True)
class Plan:
    seed: int
    rate: float  # ordinary events issued per second while the nemesis runs
    resources: int  # ordinary ordering keys
    duplicate_share: float  # share of events delivered 2-3 times
    conflict_share: float  # share of events redelivered with a changed body (other data.id and state)
    window_s: float  # HOOKYARD_REORDER_WINDOW
    recovery_timeout_s: float  # HOOKYARD_RECOVERY_TIMEOUT; a lease is a third of it
    handler_timeout_s: float  # `timeout=` of the chaos handlers
    hang_s: float  # how long a hung call sleeps
    hung_keys: int
    events_per_hung_key: int
    killer_events: int  # events on the one killer key
    future_keys: int  # keys with one far-future event amid ordinary ones
    faults: tuple[str, ...]
    drain_timeout_s: float
    # Whether latency bounds decide PASS. Timing belongs to the full run (`make chaos`, a machine to itself);
    # the smoke run inside `make test` reports the same figures but judges correctness only.
    timing_gates: bool = True
    #: "server" (one Redis) or "cluster" (3 primaries + 3 replicas, wake-ups through a plain Redis beside it).
    store: str = "server"
    min_replicas: int = 0  # HOOKYARD_MIN_REPLICAS
    inbox_shards: int = 1  # HOOKYARD_INBOX_SHARDS

    @property
    def lease_s(self) -> float:
        return self.recovery_timeout_s / 3

    @property
    def worker_stop_s(self) -> float:
        """A worker is paused for two leases: long enough for another worker to take its pairs over."""
        return 2 * self.lease_s

    @property
    def redis_stop_s(self) -> float:
        """Redis is paused for longer than the recovery timeout: every lease lapses meanwhile."""
        return self.recovery_timeout_s + 2

    @property
    def phase_deadline_s(self) -> float:
        """How long a fault may take to show its effect (dead letters, a takeover) before the run calls it failed."""
        per_attempt = max(self.handler_timeout_s, self.lease_s) + 8
        return 3 * per_attempt * max(self.events_per_hung_key, self.killer_events, 1) + 30

    def on_cluster(self, min_replicas: int) -> Plan:
        """The same run on a cluster: the one-server Redis faults give way to failover and migration."""
        server_only = {"stop-redis", "restart-redis"}
        faults = tuple(f for f in self.faults if f not in server_only) + CLUSTER_FAULTS
        return replace(self, store="cluster", min_replicas=min_replicas, inbox_shards=3, faults=faults)

    def with_options(self, **changes: object) -> Plan:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


SIZES = {
    # `make chaos`: a few thousand events in about two minutes on two cores.
    "full": Plan(
        seed=1,
        rate=40.0,
        resources=200,
        duplicate_share=0.3,
        conflict_share=0.01,
        window_s=5.0,
        recovery_timeout_s=9.0,
        handler_timeout_s=2.0,
        hang_s=16.0,
        hung_keys=3,
        events_per_hung_key=2,
        killer_events=2,
        future_keys=2,
        faults=FAULTS + EXTRA_FAULTS,
        drain_timeout_s=120.0,
    ),
    # The smoke run in `make test`: every nemesis fault once, small, in about a minute.
    "smoke": Plan(
        seed=7,
        rate=20.0,
        resources=25,
        duplicate_share=0.3,
        conflict_share=0.04,
        window_s=3.0,
        recovery_timeout_s=6.0,
        handler_timeout_s=1.5,
        hang_s=10.0,
        hung_keys=2,
        events_per_hung_key=1,
        killer_events=1,
        future_keys=1,
        faults=FAULTS,
        drain_timeout_s=45.0,
        timing_gates=False,
    ),
}
