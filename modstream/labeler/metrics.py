"""The labeler's Prometheus metrics, each in its own registry (tests and processes never collide).

``modstream_labels_total{val,neg}``    labels stored, by value; ``neg="true"`` counts negations
``modstream_label_seq``                the newest seq in the log
``modstream_label_subscribers``        subscribeLabels connections open now
``modstream_label_frames_total``       #labels frames sent to subscribers
``modstream_label_queries_total``      queryLabels requests answered (``outcome``: ok or error)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["LabelerMetrics"]


class LabelerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.labels = Counter(
            "modstream_labels_total", "Labels stored, by value (neg: negations).",
            ["val", "neg"], registry=r,
        )  # fmt: skip
        self.seq = Gauge("modstream_label_seq", "The newest seq in the label log.", registry=r)
        self.subscribers = Gauge(
            "modstream_label_subscribers", "subscribeLabels connections open now.", registry=r
        )
        self.frames = Counter(
            "modstream_label_frames_total", "#labels frames sent to subscribers.", registry=r
        )
        self.queries = Counter(
            "modstream_label_queries_total", "queryLabels requests, by outcome.", ["outcome"],
            registry=r,
        )  # fmt: skip
