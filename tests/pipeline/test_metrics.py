"""Metrics: percentile arithmetic, the rolling log window, and readable buckets."""

from __future__ import annotations

import itertools
import math

from prometheus_client import generate_latest

from modstream.pipeline.metrics import LATENCY_BUCKETS, LatencyWindow, PipelineMetrics, percentile
from modstream.pipeline.score.devices import DeviceStatistics


def test_nearest_rank_percentile() -> None:
    """p50 and p99 of 1..100 are 50 and 99; no samples is NaN."""
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert math.isnan(percentile([], 50))


def test_window_rolls_over() -> None:
    """A roll summarises the samples since the previous roll, then starts empty."""
    window = LatencyWindow()
    for value in (0.010, 0.020, 0.030, 0.500):
        window.add(value)
    summary = window.roll()
    assert summary.count == 4
    assert (summary.p50_s, summary.p99_s) == (0.020, 0.500)
    assert "p50 20 ms" in summary.describe()
    assert window.roll().count == 0


def test_the_window_line_counts_errors_by_kind() -> None:
    """Results and errors share the line, errors by kind (the most frequent first)."""
    window = LatencyWindow()
    window.add(0.040)
    window.add(0.060)
    window.add_error("not_an_image", "the body is an HTML page, not an image")
    for _ in range(3):
        window.add_error("http_status", "HTTP 404")
    summary = window.roll()
    assert not summary.all_failed
    assert summary.describe().startswith("2 results, 4 errors (http_status 3, not_an_image 1) in ")
    assert "p50 40 ms, p99 60 ms" in summary.describe()
    assert window.roll().errors == ()


def test_a_window_of_only_errors_says_every_image_failed() -> None:
    """No result and some errors: ``all_failed``, no latency figures, an example message."""
    window = LatencyWindow()
    window.add_error("invalid_url", "file: URLs are refused")
    summary = window.roll()
    assert summary.all_failed
    assert summary.describe().startswith("0 results, 1 error (invalid_url 1) in ")
    assert "p50" not in summary.describe()
    assert summary.example == "invalid_url: file: URLs are refused"
    assert not window.roll().all_failed  # an idle window is not a failed one


def test_latency_buckets_resolve_5_to_500_ms() -> None:
    """Between 5 and 500 ms no two neighbouring buckets are more than 50 ms or 1.5x apart."""
    inside = [b for b in LATENCY_BUCKETS if 0.005 <= b <= 0.5]
    assert inside[0] == 0.005 and inside[-1] == 0.5
    for low, high in itertools.pairwise(inside):
        assert high - low <= 0.050 + 1e-12 and high / low <= 1.5 + 1e-12, (low, high)


def test_each_pipeline_has_its_own_registry() -> None:
    """Two PipelineMetrics never share counters (fresh registry per instance)."""
    first, second = PipelineMetrics(), PipelineMetrics()
    first.results.labels("safe").inc()
    assert first.registry.get_sample_value("modstream_results_total", {"decision": "safe"}) == 1
    assert second.registry.get_sample_value("modstream_results_total", {"decision": "safe"}) is None
    assert b"modstream_roundtrip_seconds" in generate_latest(first.registry)


def test_device_metrics_read_the_statistics_at_scrape_time() -> None:
    """Every scrape reports what the device readers return then, one worker label per device
    across all readers, counters and gauges alike."""
    metrics = PipelineMetrics()
    counts = {"images": 0}

    def first() -> tuple[DeviceStatistics, ...]:
        return (
            DeviceStatistics(device="CPU", requests=2, in_flight=1, batches=3,
                             images=counts["images"], failures=0, busy_s=0.25),
        )  # fmt: skip

    def second() -> list[DeviceStatistics]:
        return [DeviceStatistics(device="GPU.0", requests=4, in_flight=0, batches=1, images=8,
                                 failures=2, busy_s=1.5)]  # fmt: skip

    metrics.devices.track(first)
    metrics.devices.track(second)

    def sample(name: str, device: str, worker: int) -> float | None:
        labels = {"device": device, "worker": str(worker)}
        return metrics.registry.get_sample_value(name, labels)

    counts["images"] = 5
    assert sample("modstream_device_images_total", "CPU", 0) == 5
    counts["images"] = 7  # read again at the next scrape, not remembered from the first
    assert sample("modstream_device_images_total", "CPU", 0) == 7
    assert sample("modstream_device_busy_seconds_total", "CPU", 0) == 0.25
    assert sample("modstream_device_in_flight", "CPU", 0) == 1
    assert sample("modstream_device_images_total", "GPU.0", 1) == 8
    assert sample("modstream_device_failures_total", "GPU.0", 1) == 2
    assert sample("modstream_device_requests", "GPU.0", 1) == 4
    assert sample("modstream_device_batches_total", "GPU.0", 1) == 1
