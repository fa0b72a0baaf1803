"""Prometheus metrics for the streaming pipeline, and the rolling window behind the log line.

Buckets are fine enough to read p50 and p99 anywhere between 5 ms and 500 ms. Each
:class:`PipelineMetrics` owns its registry, so tests and several pipelines in one process do not
collide.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from threading import Thread
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # the device module imports OpenVINO, which this module must not load
    from modstream.pipeline.score.devices import DeviceStatistics

LATENCY_BUCKETS = (
    0.005, 0.0075, 0.010, 0.0125, 0.015, 0.0175, 0.020, 0.025, 0.030, 0.035, 0.040, 0.045, 0.050,
    0.060, 0.070, 0.080, 0.090, 0.100, 0.125, 0.150, 0.175, 0.200, 0.225, 0.250, 0.300, 0.350,
    0.400, 0.450, 0.500, 0.750, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64)
ATTEMPT_BUCKETS = (1, 2, 3, 4, 6, 8)
LOOKUP_BUCKETS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
)  # fmt: skip


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.roundtrip = Histogram(
            "modstream_roundtrip_seconds",
            "Time from an event's observed_at to its result being published, by decision.",
            ["decision"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.stage = Histogram(
            "modstream_stage_seconds",
            "Time spent in each pipeline stage per image.",
            ["stage"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "modstream_batch_size", "Images per inference batch.", buckets=BATCH_BUCKETS, registry=r
        )
        self.results = Counter(
            "modstream_results_total", "Images moderated, by decision.", ["decision"], registry=r
        )
        self.errors = Counter(
            "modstream_errors_total", "Failed images or records, by kind.", ["kind"], registry=r
        )
        self.inflight = Gauge(
            "modstream_inflight", "Records consumed, not yet committed.", registry=r
        )
        self.cache_hits = Counter(
            "modstream_cache_hits_total",
            "Scores served from the cache, by key.",
            ["key"],
            registry=r,
        )
        self.fetch_attempts = Histogram(
            "modstream_fetch_attempts",
            "Requests made to fetch one image URL (above 1: retried after a retriable failure).",
            ["outcome"], buckets=ATTEMPT_BUCKETS, registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "modstream_consumer_lag",
            "Records in the input topic not yet consumed, by partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.hash_lookups = Counter(
            "modstream_hash_lookups_total", "Image hashes looked up in the hash banks.", registry=r
        )
        self.hash_matches = Counter(
            "modstream_hash_matches_total", "Images matched in a hash bank, by bank.", ["bank"],
            registry=r,
        )  # fmt: skip
        self.bank_quarantined = Counter(
            "modstream_bank_quarantined_total",
            "Bank entries quarantined for matching a flood of distinct images, by bank.",
            ["bank"], registry=r,
        )  # fmt: skip
        self.hash_lookup = Histogram(
            "modstream_hash_lookup_seconds", "Time to look one image hash up in every bank.",
            buckets=LOOKUP_BUCKETS, registry=r,
        )  # fmt: skip

        self.devices = DeviceMetrics(r)
        self.banks = BankMetrics(r)

    def serve(self, port: int, host: str = "127.0.0.1") -> tuple[WSGIServer, Thread]:
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return server, thread


DeviceReader = Callable[[], Sequence["DeviceStatistics"]]
BankReader = Callable[[], dict[str, int]]


class BankMetrics(Collector):
    """``modstream_hash_bank_hashes``: hashes in each bank (``bank``), read at every scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._readers: list[BankReader] = []
        registry.register(self)

    def track(self, read: BankReader) -> None:
        self._readers.append(read)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "modstream_hash_bank_hashes", "Hashes in each hash bank.", labels=["bank"]
        )
        for read in self._readers:
            for bank, size in read().items():
                family.add_metric([bank], size)
        yield family


class DeviceMetrics(Collector):
    """Per-device work, read from the scorer's device statistics when Prometheus scrapes.

    ``modstream_device_images_total``        images inferred on the device
    ``modstream_device_batches_total``       inference batches run
    ``modstream_device_busy_seconds_total``  time with a request running (rate: utilisation)
    ``modstream_device_failures_total``      failed inference requests
    ``modstream_device_in_flight``           requests running now, of ``modstream_device_requests``

    Each carries ``device`` (as OpenVINO names it) and ``worker`` (its index: a device can
    serve two lanes, each with its own compiled network).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._readers: list[DeviceReader] = []
        registry.register(self)

    def track(self, read: DeviceReader) -> None:
        """Report what ``read()`` returns (each device's ``DeviceStatistics``) at every scrape."""
        self._readers.append(read)

    def collect(self) -> Iterator[Metric]:
        families = [
            (kind(name, help_text, labels=["device", "worker"]), value)
            for kind, name, help_text, value in _DEVICE_FAMILIES
        ]
        index = 0
        for read in self._readers:
            for device in read():
                labels = [device.device, str(index)]
                index += 1
                for family, value in families:
                    family.add_metric(labels, value(device))
        yield from (family for family, _value in families)


# (family, name, help, what it reads from the DeviceStatistics)
_Family = type[CounterMetricFamily | GaugeMetricFamily]
_DEVICE_FAMILIES: tuple[tuple[_Family, str, str, Callable[[DeviceStatistics], float]], ...] = (
    (CounterMetricFamily, "modstream_device_images", "Images inferred on the device.",
     lambda device: device.images),
    (CounterMetricFamily, "modstream_device_batches", "Inference batches run.",
     lambda device: device.batches),
    (CounterMetricFamily, "modstream_device_busy_seconds", "Time with an inference running.",
     lambda device: device.busy_s),
    (CounterMetricFamily, "modstream_device_failures", "Failed inference requests.",
     lambda device: device.failures),
    (GaugeMetricFamily, "modstream_device_in_flight", "Inference requests running now.",
     lambda device: device.in_flight),
    (GaugeMetricFamily, "modstream_device_requests", "Inference requests the device runs at once.",
     lambda device: device.requests),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """What the stream did since the previous periodic line: results, and errors by kind."""

    seconds: float
    count: int  # results (flagged, review, safe)
    per_second: float
    p50_s: float
    p99_s: float
    errors: tuple[tuple[str, int], ...] = ()  # (kind, count), the most frequent first
    example: str | None = None  # the first message of the most frequent error kind

    @property
    def error_count(self) -> int:
        return sum(count for _kind, count in self.errors)

    @property
    def all_failed(self) -> bool:
        """Items were handled and every one of them failed."""
        return self.count == 0 and self.error_count > 0

    def describe(self) -> str:
        results = "1 result" if self.count == 1 else f"{self.count} results"
        errors = "1 error" if self.error_count == 1 else f"{self.error_count} errors"
        if self.errors:
            errors += " (" + ", ".join(f"{kind} {count}" for kind, count in self.errors) + ")"
        rate = (self.count + self.error_count) / self.seconds
        text = f"{results}, {errors} in {self.seconds:.1f} s ({rate:.1f}/s)"
        if self.count:
            text += f", round trip p50 {self.p50_s * 1000:.0f} ms, p99 {self.p99_s * 1000:.0f} ms"
        return text


class LatencyWindow:
    """Round-trip samples and error kinds since the last :meth:`roll`, for the periodic line."""

    def __init__(self, max_samples: int = 100_000) -> None:
        self._samples: list[float] = []
        self._max_samples = max_samples
        self._count = 0
        self._errors: dict[str, int] = {}
        self._examples: dict[str, str] = {}
        self._started = time.monotonic()

    def add(self, seconds: float) -> None:
        self._count += 1
        if len(self._samples) < self._max_samples:
            self._samples.append(seconds)

    def add_error(self, kind: str, message: str) -> None:
        self._errors[kind] = self._errors.get(kind, 0) + 1
        self._examples.setdefault(kind, message)

    def roll(self) -> WindowSummary:
        now = time.monotonic()
        elapsed = max(now - self._started, 1e-9)
        samples = sorted(self._samples)
        errors = tuple(sorted(self._errors.items(), key=lambda item: (-item[1], item[0])))
        summary = WindowSummary(
            seconds=elapsed,
            count=self._count,
            per_second=self._count / elapsed,
            p50_s=percentile(samples, 50),
            p99_s=percentile(samples, 99),
            errors=errors,
            example=f"{errors[0][0]}: {self._examples[errors[0][0]]}" if errors else None,
        )
        self._samples, self._count, self._started = [], 0, now
        self._errors, self._examples = {}, {}
        return summary


def percentile(sorted_samples: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted samples; NaN when there are none."""
    if not sorted_samples:
        return math.nan
    rank = max(math.ceil(q / 100 * len(sorted_samples)), 1)
    return sorted_samples[rank - 1]
