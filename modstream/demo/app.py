"""``modstream demo``: the whole pipeline offline, watched live, with a closing summary.

embedded broker <- synthetic firehose (bundled samples, each event's bytes distinct, one in seven a
                   repost, plus a few hostile URLs, all served on loopback)
                -> scoring stream -> images.flagged / images.review / images.safe / images.errors
                -> a watcher that counts every output and measures the round trip.

It exits 0 when every event produced exactly one output, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer

from modstream.connectors.checkpoints import MemoryCheckpoints
from modstream.connectors.publisher import PublisherConfig
from modstream.connectors.runner import run_connectors
from modstream.connectors.synthetic import SyntheticConfig, SyntheticFirehose
from modstream.demo.imageserver import ImageServer
from modstream.pipeline.metrics import percentile
from modstream.pipeline.stream.service import Pipeline, PipelineSettings


@dataclass(frozen=True, kw_only=True, slots=True)
class DemoConfig:
    rate_per_s: float = 12.0
    events: int = 240
    hostile_every: int = 20  # one event in N points at a hostile URL
    repost_every: int = 7  # one event in N repeats the one before it (a cache hit)
    timeout_s: float = 120.0
    json: bool = False


@dataclass(slots=True)
class Tally:
    """What the watcher has seen on the output topics."""

    per_topic: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    roundtrips_s: list[float] = field(default_factory=list)
    ids: Counter[str] = field(default_factory=Counter)
    cached: int = 0
    first_at: float | None = None
    last_at: float | None = None

    def add(self, topic: str, record: dict[str, Any]) -> None:
        now = time.monotonic()
        self.first_at = self.first_at or now
        self.last_at = now
        self.per_topic[topic] += 1
        self.ids[str(record.get("id"))] += 1
        self.cached += bool(record.get("cached"))
        if "error" in record:
            self.error_kinds[record["error"]["kind"]] += 1
        elif "published_at" in record and "observed_at" in record:
            self.roundtrips_s.append(record["published_at"] - record["observed_at"])

    @property
    def total(self) -> int:
        return sum(self.per_topic.values())

    def summary(self, expected: int) -> dict[str, Any]:
        samples = sorted(self.roundtrips_s)
        span = (self.last_at or 0) - (self.first_at or 0)
        return {
            "events": expected,
            "outputs": self.total,
            "missing": max(expected - len(self.ids), 0),
            "duplicates": sum(count - 1 for count in self.ids.values() if count > 1),
            "per_topic": dict(self.per_topic),
            "error_kinds": dict(self.error_kinds),
            "cache_hits": self.cached,
            "roundtrip_ms": {
                "p50": round(percentile(samples, 50) * 1000, 1) if samples else None,
                "p99": round(percentile(samples, 99) * 1000, 1) if samples else None,
                "max": round(samples[-1] * 1000, 1) if samples else None,
            },
            "throughput_per_s": round(self.total / span, 1) if span > 0 else None,
        }


async def run_demo(config: DemoConfig, settings: PipelineSettings, out: TextIO) -> int:
    stop = asyncio.Event()
    ready = asyncio.Event()
    tally = Tally()
    async with ImageServer() as server, Pipeline(settings) as pipeline:
        assert server.served is not None
        urls = _event_urls(server.served.image_urls(), server.served.hostile_urls(), config)
        scorer = asyncio.create_task(pipeline.run_scorer(stop, ready))
        watcher = asyncio.create_task(_watch(pipeline, tally))
        await _first(ready.wait(), scorer)
        print(
            f"modstream demo: {config.events} events at {config.rate_per_s:g}/s from "
            f"{server.served.base_url}, {pipeline.broker_description}",
            file=sys.stderr,
        )
        firehose = SyntheticFirehose(
            SyntheticConfig(
                urls=tuple(urls),
                rate_per_s=config.rate_per_s,
                events=config.events,
                query_key="v",  # the image server then serves distinct bytes for every event
                repost_every=config.repost_every,
            )
        )
        producer = asyncio.create_task(
            run_connectors(
                [firehose],
                kafka=pipeline.kafka,
                config=PublisherConfig(topic=settings.topics.incoming),
                checkpoints=MemoryCheckpoints(),
                stop=stop,
            )
        )
        live = _LiveView(sys.stderr)
        deadline = time.monotonic() + config.timeout_s
        while len(tally.ids) < config.events and time.monotonic() < deadline:
            if scorer.done():
                break
            live.show(tally, config.events)
            await asyncio.sleep(0.25)
        live.close(tally, config.events)
        stop.set()
        await asyncio.gather(producer, scorer, return_exceptions=True)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    summary = tally.summary(config.events)
    _print_summary(summary, out, as_json=config.json)
    ok = summary["missing"] == 0 and summary["duplicates"] == 0
    return 0 if ok else 1


def _event_urls(images: list[str], hostile: list[str], config: DemoConfig) -> list[str]:
    urls: list[str] = []
    hostile_index = 0
    for index in range(len(images) * config.hostile_every):
        if config.hostile_every and index % config.hostile_every == config.hostile_every - 1:
            urls.append(hostile[hostile_index % len(hostile)])
            hostile_index += 1
        else:
            urls.append(images[index % len(images)])
    return urls


async def _first(waiting: Any, guard: asyncio.Task[None]) -> None:
    """Wait for ``waiting`` unless ``guard`` ends first (then re-raise its failure)."""
    waiter = asyncio.ensure_future(waiting)
    await asyncio.wait([waiter, guard], return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        waiter.cancel()
        guard.result()
        raise RuntimeError("the scorer stopped before it was ready")


async def _watch(pipeline: Pipeline, tally: Tally) -> None:
    topics = pipeline.settings.topics.outputs()
    consumer = AIOKafkaConsumer(
        *topics,
        **pipeline.kafka.client_options("demo-watcher"),
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            for partition, messages in batches.items():
                for message in messages:
                    tally.add(partition.topic, orjson.loads(message.value))
    finally:
        await consumer.stop()


class _LiveView:
    """One status line, redrawn in place on a terminal and printed every few seconds otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last_print = 0.0

    def show(self, tally: Tally, expected: int) -> None:
        now = time.monotonic()
        if not self._tty and now - self._last_print < 2.0:
            return
        self._last_print = now
        line = self._line(tally, expected)
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self, tally: Tally, expected: int) -> None:
        if self._tty:
            self._stream.write("\r\x1b[2K" + self._line(tally, expected) + "\n")
            self._stream.flush()

    @staticmethod
    def _line(tally: Tally, expected: int) -> str:
        recent = sorted(tally.roundtrips_s[-500:])
        p50 = percentile(recent, 50) * 1000 if recent else float("nan")
        p99 = percentile(recent, 99) * 1000 if recent else float("nan")
        span = (tally.last_at or 0) - (tally.first_at or 0)
        rate = tally.total / span if span > 0 else 0.0
        topics = " ".join(
            f"{name.split('.')[-1]}={n}" for name, n in sorted(tally.per_topic.items())
        )
        return (
            f"[{len(tally.ids)}/{expected}] {rate:5.1f}/s  p50 {p50:5.0f} ms  p99 {p99:5.0f} ms  "
            f"{topics}"
        )


def _print_summary(summary: dict[str, Any], out: TextIO, *, as_json: bool) -> None:
    if as_json:
        out.write(orjson.dumps(summary).decode() + "\n")
        return
    roundtrip = summary["roundtrip_ms"]
    lines = [
        "",
        "modstream demo summary",
        f"  events published     {summary['events']}",
        f"  outputs received     {summary['outputs']} (missing {summary['missing']}, "
        f"duplicates {summary['duplicates']})",
        f"  per topic            {summary['per_topic']}",
        f"  error kinds          {summary['error_kinds']}",
        f"  served from cache    {summary['cache_hits']} (reposts: the same URL seen before)",
        f"  round trip           p50 {roundtrip['p50']} ms, p99 {roundtrip['p99']} ms, "
        f"max {roundtrip['max']} ms",
        f"  throughput           {summary['throughput_per_s']} results/s",
    ]
    out.write("\n".join(lines) + "\n")
