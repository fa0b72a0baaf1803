"""At least once against exactly once, on Apache Kafka: what the transactions cost.

Paired in one sitting, each mode on a fresh Apache Kafka node (one KRaft node from the tests'
Maven pom: needs java and mvn) with a scorer process (``modstream run --role scorer``, the score
cache off, so every event is a real fetch, decode and inference of the demo's sample images,
served from a loopback server in this process):

* **drain**: a backlog of ``--backlog`` events put on ``images.incoming`` before the scorer's
  first poll; results/s from the first event produced to the last result read;
* **round trip** at ``--rate`` events/s for ``--seconds``: ``published_at - observed_at`` of
  each result (exactly once adds the wait for its transaction's commit, which a reader sees
  later still: the read time is reported too).

The reader is ``read_committed`` in both modes, as every modstream reader is.

    python bench/delivery_bench.py --rounds 2 --interval 0.1
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from benchlib import cpu_model, doc_parser

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.metrics import percentile
from modstream.pipeline.stream.topics import Topics

BENCH = Path(__file__).resolve().parent
TESTS = BENCH.parent / "tests"
TOPICS = Topics()


def start_scorer(servers: str, cache_dir: Path, delivery: str, interval: float) -> Any:
    command = [
        sys.executable, "-m", "modstream", "run", "--role", "scorer", "--bootstrap-servers",
        servers, "--metrics-port", "0", "--allow-cidr", "127.0.0.0/8", "--cache-entries", "0",
        "--group-id", f"bench-{uuid.uuid4().hex[:8]}", "--cache-dir", str(cache_dir),
        "--delivery", delivery, "--transaction-interval", str(interval),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def send(producer: AIOKafkaProducer, urls: list[str], tag: str, rate: float | None,
               count: int) -> list[str]:  # fmt: skip
    ids, sends = [], []
    started = time.monotonic()
    for n in range(count):
        if rate is not None and (delay := started + n / rate - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        event_id = f"{tag}-{n}"
        value = orjson.dumps({"id": event_id, "url": f"{urls[n % len(urls)]}?{tag}={n}",
                              "source": "bench", "observed_at": time.time()})  # fmt: skip
        sends.append(await producer.send(TOPICS.incoming, value, key=event_id.encode()))
        ids.append(event_id)
    await asyncio.gather(*sends)
    return ids


async def until(consumer: AIOKafkaConsumer, seen: dict[str, tuple[dict[str, Any], float]],
                ids: list[str], timeout_s: float) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    wanted = set(ids)
    while not wanted <= seen.keys():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(wanted - seen.keys())} results missing")
        for messages in (await consumer.getmany(timeout_ms=50)).values():
            now = time.time()
            for message in messages:
                record = orjson.loads(message.value)
                seen.setdefault(record["id"], (record, now))


async def one_mode(delivery: str, args: Any, cache_dir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(TESTS))
    from apache_kafka import ApacheKafka, kafka_classpath

    classpath = kafka_classpath(Path.home() / ".cache" / "modstream-dev")
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as directory:
        async with (
            ApacheKafka(Path(directory), classpath, heap_mb=1024) as kafka,
            ImageServer() as server,
        ):
            servers = kafka.bootstrap_servers
            specs = [TopicSpec(name, 4) for name in (TOPICS.incoming, *TOPICS.outputs())]
            await ensure_topics(KafkaSettings(bootstrap_servers=servers), specs)
            assert server.served is not None
            urls = server.served.image_urls()
            producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
            consumer = AIOKafkaConsumer(
                *TOPICS.outputs(), bootstrap_servers=servers, group_id=None,
                auto_offset_reset="earliest", fetch_max_wait_ms=50,
                isolation_level="read_committed",
            )  # fmt: skip
            await producer.start()
            await consumer.start()
            seen: dict[str, tuple[dict[str, Any], float]] = {}
            scorer = start_scorer(servers, cache_dir, delivery, args.interval)
            try:
                warm = await send(producer, urls, "warm", None, 16)
                await until(consumer, seen, warm, 180)
                started = time.monotonic()
                backlog = await send(producer, urls, "drain", None, args.backlog)
                await until(consumer, seen, backlog, 900)
                drain = len(backlog) / (time.monotonic() - started)
                # Read while sending: a result's read time is when this reader first saw it.
                count = int(args.rate * args.seconds)
                expected = [f"paced-{n}" for n in range(count)]
                reading = asyncio.create_task(until(consumer, seen, expected, 300))
                paced = await send(producer, urls, "paced", args.rate, count)
                await reading
                trips = sorted(seen[i][0]["published_at"] - seen[i][0]["observed_at"]
                               for i in paced)  # fmt: skip
                reads = sorted(seen[i][1] - seen[i][0]["observed_at"] for i in paced)
                return {
                    "delivery": delivery, "backlog": len(backlog), "drain_per_s": round(drain, 2),
                    "rate_per_s": args.rate,
                    "roundtrip_p50_ms": round(percentile(trips, 50) * 1000, 1),
                    "roundtrip_p99_ms": round(percentile(trips, 99) * 1000, 1),
                    "read_p50_ms": round(percentile(reads, 50) * 1000, 1),
                    "read_p99_ms": round(percentile(reads, 99) * 1000, 1),
                }  # fmt: skip
            finally:
                scorer.terminate()
                scorer.wait(60)
                await producer.stop()
                await consumer.stop()


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=12.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.1, help="--transaction-interval")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "delivery.json")
    args = parser.parse_args()
    model, flags = cpu_model()
    print(f"CPU: {model}; flags: {' '.join(flags)}", flush=True)
    cache_dir = Path(tempfile.gettempdir()) / "modstream-bench-cache"
    rounds = []
    for _ in range(args.rounds):
        paired = {}
        for delivery in ("at-least-once", "exactly-once"):
            paired[delivery] = asyncio.run(one_mode(delivery, args, cache_dir))
            print(json.dumps(paired[delivery]), flush=True)
        ratio = paired["exactly-once"]["drain_per_s"] / paired["at-least-once"]["drain_per_s"]
        paired["drain_ratio"] = round(ratio, 3)
        print(f"drain ratio exactly/at-least once: {ratio:.3f}", flush=True)
        rounds.append(paired)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": model, "flags": flags, "interval": args.interval,
                                    "rounds": rounds}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
