"""The verdict service's Prometheus metrics, in a registry of its own.

``modstream_verdict_lookups_total{outcome}``   subjects looked up: known, unknown, bad
``modstream_verdict_lookup_seconds{route}``    a lookup request's time in the handler (single,
                                               batch)
``modstream_verdict_entries{kind}``            images, posts, hashes, overrides in the table
``modstream_verdict_freshness_seconds``        a result's publish to its verdict being visible
``modstream_verdict_rebuild_seconds``          reading the verdict topic to its end at start
``modstream_verdict_broker_silence_seconds``   since the broker last answered this replica
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["VerdictMetrics"]

# Lookups answer in well under a millisecond: the buckets resolve the hot path's budget.
_LOOKUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
_FRESHNESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class VerdictMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.lookups = Counter(
            "modstream_verdict_lookups_total", "Subjects looked up, by outcome.", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "modstream_verdict_lookup_seconds", "Time in the handler per lookup request.",
            ["route"], buckets=_LOOKUP_BUCKETS, registry=r,
        )  # fmt: skip
        self.entries = Gauge(
            "modstream_verdict_entries", "Entries in the verdict table, by kind.", ["kind"],
            registry=r,
        )  # fmt: skip
        self.freshness = Histogram(
            "modstream_verdict_freshness_seconds",
            "From a result's publish to its verdict answering lookups.",
            buckets=_FRESHNESS_BUCKETS, registry=r,
        )  # fmt: skip
        self.rebuild = Gauge(
            "modstream_verdict_rebuild_seconds", "Reading the verdict topic to its end at start.",
            registry=r,
        )  # fmt: skip
        self.silence = Gauge(
            "modstream_verdict_broker_silence_seconds",
            "Seconds since the broker last answered this replica.", registry=r,
        )  # fmt: skip
