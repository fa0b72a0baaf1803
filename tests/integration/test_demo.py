"""``modstream demo`` as a user runs it: on its own embedded broker, and on a given Kafka cluster.

Each run exits 0 only when every event produced exactly one output; the JSON summary says so.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from .conftest import Broker

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _demo(cache_dir: Path, *extra: str) -> dict[str, Any]:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream", "demo", "--events", "40", "--rate", "40", "--json",
         "--cache-dir", str(cache_dir), *extra],
        capture_output=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary: dict[str, Any] = orjson.loads(done.stdout)
    return summary


async def test_the_offline_demo_gets_one_output_per_event(ov_cache_dir: Path) -> None:
    """With no cluster given, the demo starts its own broker and accounts for every event."""
    summary = await _demo(ov_cache_dir)
    assert (summary["events"], summary["outputs"]) == (40, 40)
    assert summary["missing"] == summary["duplicates"] == 0
    assert summary["error_kinds"], "the demo's hostile URLs reach the errors topic"
    assert summary["roundtrip_ms"]["p99"] is not None


async def test_the_demo_runs_on_a_given_cluster_in_topics_of_its_own(
    any_broker: Broker, ov_cache_dir: Path
) -> None:
    """--bootstrap-servers: the same demo on that cluster, twice, each run counting only its own
    outputs (modstream-demo-<random>.* topics and group)."""
    for _run in range(2):
        summary = await _demo(ov_cache_dir, "--bootstrap-servers", any_broker.bootstrap_servers)
        assert (summary["outputs"], summary["missing"], summary["duplicates"]) == (40, 0, 0)
        assert all(topic.startswith("modstream-demo-") for topic in summary["per_topic"])


async def test_a_failing_stage_stops_the_demo_at_once_with_one_line(ov_cache_dir: Path) -> None:
    """A stage that fails (here the scorer: no such device) stops every other stage, and the demo
    exits 1 with one line naming the failure, instead of a traceback or waiting out its
    timeout."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream", "demo", "--events", "40", "--timeout", "120",
         "--device", "NOPE", "--cache-dir", str(ov_cache_dir)],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr.decode()[-3000:]
    lines = done.stderr.decode().splitlines()
    ours = [line for line in lines if line.startswith("modstream demo:")]
    assert len(ours) == 1 and ours[0].startswith("modstream demo: device_error: "), lines
    assert "Traceback" not in done.stderr.decode()
    assert done.stdout == b"", "no summary for a demo that did not run"
