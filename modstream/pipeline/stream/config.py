"""The scoring stream's settings: a light module, so the command line reads its defaults here
without importing a Kafka client."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modstream.backoff import BackoffPolicy
from modstream.kafka.settings import Delivery, GroupTimings
from modstream.pipeline.stream.topics import Topics

if TYPE_CHECKING:
    from modstream.kafka.consume import ConsumerSettings

__all__ = ["METRICS_PORT", "PARTITIONS", "REPLICATION_FACTOR", "StreamConfig"]

# The pipeline's defaults for the topics it creates and its Prometheus port (PipelineSettings,
# and the flags of modstream run, which read them here).
PARTITIONS = 4
REPLICATION_FACTOR = 1
METRICS_PORT = 9108


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamConfig:
    """How the stream consumes and publishes; durations in seconds."""

    topics: Topics = field(default_factory=Topics)
    group_id: str = "modstream-scorers"
    max_in_flight: int = 64
    drain_timeout_s: float = 30.0
    # How long a revoked partition's in-flight records may take to finish before the partition
    # moves on; the rest are cancelled and replayed by its next owner.
    revoke_timeout_s: float = 5.0
    log_interval_s: float = 10.0
    # Starting the clients and publishing retry with this backoff while the broker is away.
    retry: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(initial_s=0.25, max_s=5.0, jitter=0.0)
    )
    timings: GroupTimings = field(default_factory=GroupTimings)
    delivery: Delivery = Delivery.AT_LEAST_ONCE
    # Exactly once: how often each input partition's transaction commits (its outputs wait for
    # it: the round trip grows by up to this much; each commit costs a few round trips).
    transaction_interval_s: float = 0.1
    # Exactly once: how long the coordinator lets a transaction stay open before it aborts it
    # and fences its producer (Kafka's transaction.timeout.ms). Transactions open only while
    # finished results are sent, so only a stalled process reaches it.
    transaction_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.transaction_interval_s <= 0:
            raise ValueError(
                f"--transaction-interval must be above 0 s, got {self.transaction_interval_s}"
            )
        if self.transaction_timeout_s <= self.transaction_interval_s:
            raise ValueError(
                f"--transaction-timeout ({self.transaction_timeout_s:g} s) must be longer than "
                f"--transaction-interval ({self.transaction_interval_s:g} s)"
            )

    def consumer(self) -> ConsumerSettings:
        from modstream.kafka.consume import ConsumerSettings

        # The group waits this long for members to rejoin: room for a revoked partition's
        # in-flight records to finish (revoke_timeout_s) before we do.
        rejoin = self.timings.session_timeout_s + self.revoke_timeout_s
        timings = dataclasses.replace(self.timings, rebalance_timeout_s=rejoin)
        if self.delivery is Delivery.EXACTLY_ONCE:  # the commit is the transaction's
            timings = dataclasses.replace(
                timings, commit_interval_s=self.transaction_interval_s,
                transaction_timeout_s=self.transaction_timeout_s,
            )  # fmt: skip
        return ConsumerSettings(
            topics=(self.topics.incoming,), group_id=self.group_id, role="scorer",
            timings=timings,
        )  # fmt: skip
