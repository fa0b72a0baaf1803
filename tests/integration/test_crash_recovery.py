"""A scorer process killed with SIGKILL mid-stream loses nothing: a new one replays the rest.

Runs on the embedded broker and on Apache Kafka, each test with its own topic prefix.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
from children import reap, spawn, terminate
from PIL import Image

from modstream.demo.imageserver import ImageServer, with_tag
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.stream.topics import Topics

from .conftest import Broker
from .support import OutputReader, committed_offsets, end_offsets, produce, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")

PICTURES = 30  # distinct pictures, ~1 MP each
VARIANTS = 5  # byte-distinct copies of each picture, so no event is a cache hit
EVENTS = PICTURES * VARIANTS
PARTITIONS = 4  # the CLI's default
KILL_AFTER = 20  # outputs seen before the first scorer is killed


def _pictures() -> list[bytes]:
    """Smooth random-noise JPEGs of 1200x900: cheap to make, real work to decode and score."""
    rng = np.random.default_rng(20240601)
    pictures = []
    for _ in range(PICTURES):
        coarse = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
        buffer = io.BytesIO()
        coarse.resize((1200, 900), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
        pictures.append(buffer.getvalue())
    return pictures


def _images() -> dict[str, bytes]:
    images: dict[str, bytes] = {}
    for p, picture in enumerate(_pictures()):
        for v in range(VARIANTS):
            images[f"noise-{p:02d}-{v}.jpg"] = with_tag(picture, f"variant {v}".encode())
    return images


def _start_scorer(
    servers: str, prefix: str, group: str, cache_dir: Path, log: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "modstream", "run", "--role", "scorer", "--topic-prefix", prefix,
        "--bootstrap-servers", servers, "--metrics-port", "0", "--allow-cidr", "127.0.0.0/8",
        "--cache-dir", str(cache_dir), "--group-id", group,
        "--session-timeout", "2",  # the embedded broker's setting; a join waits ~half
        "--fetch-max-wait", "0.02",  # ditto: the embedded broker waits out most of a fetch
    ]  # fmt: skip
    return spawn(command, log, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def _alive(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is not None:
        raise AssertionError(f"the scorer exited with {process.returncode}:\n{_tail(log)}")


async def test_sigkilled_scorer_is_replaced_without_losing_events(
    any_broker: Broker, tmp_path: Path, ov_cache_dir: Path
) -> None:
    """After kill -9 of a scorer mid-stream, a new one gives every event at least one output."""
    prefix = f"crash-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    group = unique_group("crash")
    processes: list[subprocess.Popen[bytes]] = []
    images = await asyncio.to_thread(_images)
    async with ImageServer(images=images) as server:
        try:
            servers = any_broker.bootstrap_servers
            specs = [TopicSpec(topics.incoming, PARTITIONS)]
            specs += [TopicSpec(name, PARTITIONS) for name in topics.outputs()]
            await ensure_topics(KafkaSettings(bootstrap_servers=servers), specs)
            assert server.served is not None
            events = {
                f"crash-{n:03d}": {"id": f"crash-{n:03d}", "url": f"{url}?n={n}", "source": "crash"}
                for n, url in enumerate(server.served.image_urls())
            }
            assert len(events) == EVENTS
            values = [orjson.dumps(event) for event in events.values()]
            await produce(servers, topics.incoming, values, partitions=PARTITIONS)

            first_log, second_log = tmp_path / "scorer-1.log", tmp_path / "scorer-2.log"
            first = _start_scorer(servers, prefix, group, ov_cache_dir, first_log)
            processes.append(first)
            async with OutputReader(servers, topics.outputs()) as reader:
                await reader.wait_until(
                    lambda outputs: len(outputs) >= KILL_AFTER,
                    timeout_s=40,
                    what=f"{KILL_AFTER} outputs from the first scorer",
                    alive=lambda: _alive(first, first_log),
                )
                first.send_signal(signal.SIGKILL)
                await asyncio.to_thread(first.wait, 10)
                done_at_kill = {o.record["id"] for o in reader.outputs}
                assert len(done_at_kill) < EVENTS, "the first scorer finished before the kill"

                second = _start_scorer(servers, prefix, group, ov_cache_dir, second_log)
                processes.append(second)
                await reader.wait_until(
                    lambda outputs: {o.record["id"] for o in outputs} >= set(events),
                    timeout_s=60,
                    what="an output for every event after the restart (group rebalance)",
                    alive=lambda: _alive(second, second_log),
                )
                assert await terminate(second) == 0, _tail(second_log)
                await reader.read_to_end()
                outputs = list(reader.outputs)
        finally:
            for process in processes:
                reap(process)

        counts = Counter(o.record["id"] for o in outputs)
        duplicates = sum(n - 1 for n in counts.values())
        print(
            f"\ncrash recovery: {len(done_at_kill)}/{EVENTS} events done at the kill, "
            f"{len(outputs)} outputs in all, {duplicates} duplicates"
        )
        assert set(counts) == set(events)
        assert [o.record for o in outputs if o.topic == topics.errors] == []
        ends = await end_offsets(servers, topics.incoming)
        assert await committed_offsets(servers, group, topics.incoming, ends) == ends
