"""``modstream demo``: the whole pipeline offline, watched live, with a closing summary.

embedded broker <- synthetic firehose (bundled samples, each event's bytes distinct, one in seven a
                   repost, plus a few hostile URLs, all served on loopback)
                -> scoring stream -> images.flagged / images.review / images.safe / images.errors
                -> a watcher that counts every output and measures the round trip.

It exits 0 when every event produced exactly one output, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

import orjson

from modstream.connectors.checkpoints import MemoryCheckpoints
from modstream.connectors.publisher import PublisherConfig
from modstream.connectors.runner import run_connectors
from modstream.connectors.synthetic import SyntheticConfig, SyntheticFirehose
from modstream.demo.imageserver import ImageServer
from modstream.kafka.reading import follow
from modstream.pipeline.metrics import percentile
from modstream.pipeline.stream.service import Pipeline, PipelineSettings
from modstream.process import run_stages


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
    """Run the demo's stages side by side (:func:`~modstream.process.run_stages`): a stage that
    fails stops the others and is raised, so the demo fails loudly instead of waiting out its
    timeout."""
    stop, ready = asyncio.Event(), asyncio.Event()
    tally = Tally()
    async with ImageServer() as server, Pipeline(settings) as pipeline:
        assert server.served is not None
        served = server.served
        urls = _event_urls(served.image_urls(), served.hostile_urls(), config)

        async def firehose() -> None:
            await ready.wait()
            print(
                f"modstream demo: {config.events} events at {config.rate_per_s:g}/s from "
                f"{served.base_url}, {pipeline.broker_description}",
                file=sys.stderr,
            )
            source = SyntheticFirehose(
                SyntheticConfig(
                    urls=tuple(urls),
                    rate_per_s=config.rate_per_s,
                    events=config.events,
                    query_key="v",  # the image server then serves distinct bytes for every event
                    repost_every=config.repost_every,
                )
            )
            await run_connectors(
                [source],
                kafka=pipeline.kafka,
                config=PublisherConfig(topic=settings.topics.incoming),
                checkpoints=MemoryCheckpoints(),
                stop=stop,
            )

        async def until_accounted() -> None:
            """Show progress until every event has its output (or the timeout), then stop."""
            await ready.wait()
            live = _LiveView(sys.stderr)
            deadline = time.monotonic() + config.timeout_s
            while len(tally.ids) < config.events and time.monotonic() < deadline:
                live.show(tally, config.events)
                await asyncio.sleep(0.25)  # the live view's refresh, not a synchronisation
            live.close(tally, config.events)
            stop.set()

        await run_stages(
            {
                "scorer": lambda: pipeline.run_scorer(stop, ready),
                "firehose": firehose,
                "watcher": lambda: _watch(pipeline, tally, stop),
                "progress": until_accounted,
            }
        )
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


async def _watch(pipeline: Pipeline, tally: Tally, stop: asyncio.Event) -> None:
    """Count every output record until ``stop``."""
    topics = pipeline.settings.topics.outputs()
    async with follow(pipeline.kafka, topics, role="demo-watcher") as records:
        while not stop.is_set():
            for topic, value in await records.next_batch(timeout_s=0.1):
                tally.add(topic, orjson.loads(value))


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
