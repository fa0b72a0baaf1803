"""End-to-end streaming benchmark: Kafka in, scores out, through a real scorer process.

What it measures, on one machine, in one sitting:

* **saturation**: a backlog of N events (one per distinct image) is put on ``images.incoming`` and
  the time from the first event produced to the N-th output consumed gives results/s;
* **latency**: events paced at a fixed rate (default 12/s, and 50 % of the measured saturation),
  round trip = ``published_at - observed_at`` of each result, p50/p99;
* **peer**: ``modstream score --json DIR`` on the same images, as a whole process and in steady
  state (first to last result line), so the stream can be compared with batch scoring.

The broker is the embedded tansu broker, or Apache Kafka (one KRaft node from the tests' Maven
pom, needs java and mvn) with ``--broker kafka``; ``--broker both`` runs them one after the other
in each round, so their figures are paired. The images are served from a loopback HTTP server in
this process, and the scorer is ``modstream run --role scorer`` in a separate process with the
score cache off, so every event costs a real fetch, decode and inference.

    python bench/stream_bench.py bench/data/photos --rounds 3 --broker both
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.metrics import percentile
from modstream.pipeline.stream.topics import Topics

OUTPUTS = Topics().outputs()
TESTS = Path(__file__).resolve().parent.parent / "tests"
# The embedded broker waits out most of a fetch and makes a join wait half the session timeout;
# Apache Kafka needs neither setting (modstream's defaults are for it).
SCORER_FLAGS = {
    "tansu": ["--session-timeout", "2", "--fetch-max-wait", "0.02"],
    "kafka": [],
}


@dataclass(frozen=True)
class RunningBroker:
    servers: str
    pid: int


@contextlib.asynccontextmanager
async def open_broker(kind: str) -> AsyncIterator[RunningBroker]:
    if kind == "tansu":
        async with EmbeddedBroker() as broker:
            yield RunningBroker(broker.bootstrap_servers, broker.pid)
        return
    sys.path.insert(0, str(TESTS))
    from apache_kafka import ApacheKafka, kafka_classpath

    classpath = kafka_classpath(Path.home() / ".cache" / "modstream-dev")
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as directory:
        async with ApacheKafka(Path(directory), classpath, heap_mb=1024) as kafka:
            yield RunningBroker(kafka.bootstrap_servers, kafka.pid)


@dataclass
class Watcher:
    consumer: AIOKafkaConsumer
    seen: dict[str, dict[str, Any]]
    arrival: dict[str, float]

    async def until(self, ids: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ids <= self.seen.keys():
            if time.monotonic() > deadline:
                missing = len(ids - self.seen.keys())
                raise TimeoutError(f"{missing} outputs missing after {timeout_s} s")
            batches = await self.consumer.getmany(timeout_ms=50)
            now = time.monotonic()
            for messages in batches.values():
                for message in messages:
                    record = orjson.loads(message.value)
                    self.seen.setdefault(record["id"], record)
                    self.arrival.setdefault(record["id"], now)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_scorer(
    servers: str, cache_dir: Path, extra: list[str], broker: str
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "modstream", "run", "--role", "scorer",
        "--bootstrap-servers", servers, "--metrics-port", "0", "--allow-cidr", "127.0.0.0/8",
        "--cache-entries", "0", *SCORER_FLAGS[broker],
        "--group-id", f"bench-{uuid.uuid4().hex[:8]}", "--cache-dir", str(cache_dir), *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def produce(
    producer: AIOKafkaProducer, urls: list[str], tag: str, rate: float | None
) -> list[str]:
    ids = []
    start = time.monotonic()
    sends = []
    for index, url in enumerate(urls):
        if rate is not None:
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        event_id = f"{tag}-{index}"
        ids.append(event_id)
        value = orjson.dumps({"id": event_id, "url": url, "source": "bench",
                              "observed_at": time.time()})  # fmt: skip
        sends.append(await producer.send("images.incoming", value=value, key=event_id.encode()))
    await asyncio.gather(*sends)
    return ids


async def stream_round(
    images: Path, cache_dir: Path, rates: list[float], extra: list[str], broker_kind: str
) -> dict[str, Any]:
    async with open_broker(broker_kind) as broker, ImageServer(root=images) as server:
        assert server.served is not None
        servers = broker.servers
        specs = [TopicSpec(name, 4) for name in ("images.incoming", *OUTPUTS)]
        await ensure_topics(KafkaSettings(bootstrap_servers=servers), specs)
        urls = [f"{u}?r={uuid.uuid4().hex[:6]}" for u in server.served.image_urls()]
        scorer = start_scorer(servers, cache_dir, extra, broker_kind)
        producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=0)
        consumer = AIOKafkaConsumer(
            *OUTPUTS, bootstrap_servers=servers, group_id=None, auto_offset_reset="earliest",
            fetch_max_wait_ms=100,  # the round trip is read from the records, not from here
        )  # fmt: skip
        await producer.start()
        await consumer.start()
        watcher = Watcher(consumer, {}, {})
        try:
            warm = await produce(producer, urls[:16], "warm", None)
            await watcher.until(set(warm), 120)
            broker_pid = broker.pid
            cpu_before = {
                "scorer": cpu_seconds(scorer.pid),
                "broker": cpu_seconds(broker_pid),
                "bench": cpu_seconds(os.getpid()),
            }
            started = time.monotonic()
            backlog = await produce(producer, urls, "sat", None)
            await watcher.until(set(backlog), 600)
            last = max(watcher.arrival[i] for i in backlog)
            cpu_after = {
                "scorer": cpu_seconds(scorer.pid),
                "broker": cpu_seconds(broker_pid),
                "bench": cpu_seconds(os.getpid()),
            }
            saturation = len(backlog) / (last - started)
            errors = sum("error" in watcher.seen[i] for i in backlog)
            result: dict[str, Any] = {
                "events": len(backlog), "saturation_per_s": round(saturation, 2),
                "errors": errors, "latency": [],
                "saturation_cores": {
                    name: round((cpu_after[name] - cpu_before[name]) / (last - started), 2)
                    for name in cpu_before
                },
            }  # fmt: skip
            for rate in [*rates, round(saturation / 2, 1)]:
                ids = await produce(producer, urls, f"rate{rate}", rate)
                await watcher.until(set(ids), 600)
                trips = sorted(
                    watcher.seen[i]["published_at"] - watcher.seen[i]["observed_at"] for i in ids
                )
                result["latency"].append({
                    "rate_per_s": rate,
                    "p50_ms": round(percentile(trips, 50) * 1000, 1),
                    "p99_ms": round(percentile(trips, 99) * 1000, 1),
                    "max_ms": round(trips[-1] * 1000, 1),
                })  # fmt: skip
            return result
        finally:
            await producer.stop()
            await consumer.stop()
            scorer.terminate()
            scorer.wait(60)


def score_round(images: Path, cache_dir: Path, extra: list[str]) -> dict[str, float]:
    """Whole-process rate, and the steady rate between the first and the last result line."""
    command = [sys.executable, "-m", "modstream", "score", "--json", "--no-progress",
               "--cache-dir", str(cache_dir), *extra, str(images)]  # fmt: skip
    started = time.perf_counter()
    stamps: list[float] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        for _line in process.stdout:
            stamps.append(time.perf_counter())
    total = time.perf_counter() - started
    if process.returncode != 0 or len(stamps) < 2:
        raise RuntimeError(f"modstream score failed ({process.returncode})")
    return {
        "images": len(stamps),
        "whole_process_per_s": round(len(stamps) / total, 2),
        "steady_per_s": round((len(stamps) - 1) / (stamps[-1] - stamps[0]), 2),
        "first_result_s": round(stamps[0] - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, help="folder of distinct images")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, action="append", default=None,
                        help="paced rate(s) for the latency test (default 12)")  # fmt: skip
    parser.add_argument("--scorer-arg", action="append", default=[],
                        help="extra argument for both modstream commands")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--broker", choices=["tansu", "kafka", "both"], default="tansu")
    args = parser.parse_args()
    default_cache = Path(tempfile.gettempdir()) / "modstream-bench-cache"
    cache_dir = Path(os.environ.get("MODSTREAM_CACHE_DIR", default_cache))
    brokers = ["tansu", "kafka"] if args.broker == "both" else [args.broker]
    rounds = []
    for _round in range(args.rounds):
        score = score_round(args.images, cache_dir, args.scorer_arg)
        measured: dict[str, Any] = {"score": score}
        for kind in brokers:
            stream = asyncio.run(
                stream_round(args.images, cache_dir, args.rate or [12.0], args.scorer_arg, kind)
            )
            ratio = stream["saturation_per_s"] / score["steady_per_s"]
            measured[kind] = {"stream": stream, "saturation_vs_score": round(ratio, 3)}
        rounds.append(measured)
        print(json.dumps(rounds[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"stream-{time.strftime('%Y%m%d-%H%M%S')}.json"
    machine = {"cpus": os.cpu_count()}
    path.write_text(json.dumps({"machine": machine, "rounds": rounds}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
