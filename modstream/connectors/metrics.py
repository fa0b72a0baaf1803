"""Prometheus metrics of the connectors, read from their statistics when Prometheus scrapes.

``modstream_connector_events_total``           events acknowledged by the broker (rate: events/s)
``modstream_connector_reconnects_total``       connections to the source re-established
``modstream_connector_malformed_total``        frames or payloads skipped as unreadable
``modstream_connector_publish_failures_total`` failed send attempts (each retried, none dropped)
``modstream_connector_outstanding``            events sent, not yet acknowledged
``modstream_connector_connected``              1 while the source is connected

Each carries ``source`` (the kind) and ``stream`` (the checkpoint key).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modstream.connectors.publisher import SourcePublisher

__all__ = ["ConnectorMetrics"]

_LABELS = ["source", "stream"]


class ConnectorMetrics(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._publishers: list[SourcePublisher] = []
        registry.register(self)

    def track(self, publisher: SourcePublisher) -> None:
        self._publishers.append(publisher)

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "modstream_connector_events", "Events acknowledged by the broker.", labels=_LABELS
        )
        reconnects = CounterMetricFamily(
            "modstream_connector_reconnects", "Source connections re-established.", labels=_LABELS
        )
        malformed = CounterMetricFamily(
            "modstream_connector_malformed", "Unreadable frames or payloads.", labels=_LABELS
        )
        failures = CounterMetricFamily(
            "modstream_connector_publish_failures", "Failed send attempts.", labels=_LABELS
        )
        outstanding = GaugeMetricFamily(
            "modstream_connector_outstanding", "Events not yet acknowledged.", labels=_LABELS
        )
        connected = GaugeMetricFamily(
            "modstream_connector_connected", "1 while the source is connected.", labels=_LABELS
        )
        for publisher in self._publishers:
            labels = [publisher.source.name, publisher.source.checkpoint_key]
            source, sent = publisher.source.statistics(), publisher.statistics()
            events.add_metric(labels, sent.published)
            reconnects.add_metric(labels, source.reconnects)
            malformed.add_metric(labels, source.malformed)
            failures.add_metric(labels, sent.failures)
            outstanding.add_metric(labels, sent.outstanding)
            connected.add_metric(labels, 1.0 if source.connected else 0.0)
        yield from (events, reconnects, malformed, failures, outstanding, connected)
