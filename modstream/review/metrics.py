"""Prometheus metrics of the review console, read from its state when Prometheus scrapes.

``modstream_review_pending``                    items waiting for a decision
``modstream_review_leased``                     of those, held by a reviewer now
``modstream_review_oldest_pending_age_seconds`` how long the oldest waiting item has waited
``modstream_review_consumed_total``             records taken from the review topics
``modstream_review_decisions_total{label}``     decisions stored, by label (nsfw, safe, skip)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from modstream.review.service import ReviewService

__all__ = ["ReviewMetrics"]


class ReviewMetrics(Collector):
    def __init__(self, service: ReviewService, registry: CollectorRegistry) -> None:
        self._service = service
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        service = self._service
        now = service.now()
        queued = service.queue.statistics(now)
        yield GaugeMetricFamily(
            "modstream_review_pending", "Items waiting for a decision.", value=queued.pending
        )
        yield GaugeMetricFamily(
            "modstream_review_leased", "Waiting items held by a reviewer.", value=queued.leased
        )
        yield GaugeMetricFamily(
            "modstream_review_oldest_pending_age_seconds",
            "How long the oldest waiting item has waited (0 when none waits).",
            value=queued.oldest_age_s,
        )
        yield CounterMetricFamily(
            "modstream_review_consumed", "Records taken from the review topics.",
            value=service.consumed,
        )  # fmt: skip
        decisions = CounterMetricFamily(
            "modstream_review_decisions", "Decisions stored, by label.", labels=["label"]
        )
        for label, count in sorted(service.decisions_by_label().items()):
            decisions.add_metric([label], count)
        yield decisions
