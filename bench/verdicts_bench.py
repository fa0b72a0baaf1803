"""Brand-safety verdicts: a million posts loaded, then lookups, batches and freshness measured.

What it measures, on one machine, in one sitting, with ``modstream verdicts`` as its own process
and the load generator in this one:

* **load and rebuild**: ``--posts`` posts of ``--images`` images each are written to the
  compacted verdict topic on Apache Kafka (one KRaft node from the tests' Maven pom: needs java
  and mvn), as the service itself writes them; the replica then starts, and the time to its
  ``/readyz`` 200 and its own ``modstream_verdict_rebuild_seconds`` are the rebuild. Its resident
  set (VmRSS, and the peak VmHWM) is read once it is ready;
* **single lookups**, open loop at ``--rate`` requests/s for ``--duration`` s over keep-alive
  connections, a third each by post, url and sha256 (1 in 20 unknown): the latency of each from
  the moment it was due (so a late send counts) to its answer; p50/p99/max;
* **batch lookups** of ``--batch`` subjects, open loop at ``--batch-rate`` batches/s;
* **freshness**: result records published to ``images.flagged`` and ``images.safe`` at
  ``--fresh-rate``/s, each polled by url every 10 ms until the replica knows it: from the
  record's ``published_at`` to the first answer that knows it;
* **the peer**: what answering one post costs without the service, a consumer reading the same
  verdict topic from its start until it has the post's images (the replica's rebuild does this
  read once, then answers from memory).

    python bench/verdicts_bench.py --posts 1000000 --images 2
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from benchlib import cpu_model, doc_parser

from modstream.kafka.broker import TopicSpec, ensure_topics, free_loopback_port
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.metrics import percentile
from modstream.pipeline.moderate.brandsafety import Risk
from modstream.pipeline.stream.topics import Topics
from modstream.verdicts.config import VerdictSettings
from modstream.verdicts.entries import Entry

BENCH = Path(__file__).resolve().parent
TESTS = BENCH.parent / "tests"
TOPICS = Topics()
PARTITIONS = VerdictSettings.__dataclass_fields__["verdict_partitions"].default
# The share of each tier among the loaded images: most of a feed is safe.
TIERS = ((Risk.NONE, 0.70), (Risk.LOW, 0.20), (Risk.MEDIUM, 0.05), (Risk.HIGH, 0.04),
         (Risk.FLOOR, 0.01))  # fmt: skip


def post_of(p: int) -> str:
    return f"at://did:plc:bench{p:07d}/app.bsky.feed.post/3l{p:09d}"


def url_of(p: int, i: int) -> str:
    return f"https://cdn.bench.example/img/plain/did:plc:bench{p:07d}/bafk{p:09d}x{i}@jpeg"


def sha_of(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


async def entries(posts: int, images: int, seed: int = 7) -> AsyncIterator[Entry]:
    """The model's verdicts on ``posts`` posts of ``images`` images, the tiers drawn as TIERS."""
    rng = random.Random(seed)
    risks, weights = zip(*TIERS, strict=True)
    now = time.time()
    for p in range(posts):
        for i in range(images):
            url = url_of(p, i)
            yield Entry(
                url=url, post=post_of(p), sha256=sha_of(url),
                risk=rng.choices(risks, weights)[0], nsfw=round(rng.random(), 6), by="model",
                at=now - (posts - p) * 0.001, review=False,
            )  # fmt: skip
        if p % 1000 == 999:
            await asyncio.sleep(0)


async def load(servers: str, topic: str, posts: int, images: int) -> float:
    """Write the entries to the verdict topic in batches per partition; the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=servers, acks="all", linger_ms=20, max_batch_size=512 * 1024,
        max_request_size=2 * 1024 * 1024,
    )  # fmt: skip
    partitioner = DefaultPartitioner()
    await producer.start()
    started = time.monotonic()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        batches = {p: producer.create_batch() for p in partitions}
        pending: list[asyncio.Future[Any]] = []

        async def flush(partition: int) -> None:
            batch = batches[partition]
            batches[partition] = producer.create_batch()
            pending.append(await producer.send_batch(batch, topic, partition=partition))
            if len(pending) > 64:
                await asyncio.gather(*pending)
                pending.clear()

        async for entry in entries(posts, images):
            key = entry.key
            partition = partitioner(key, partitions, partitions)
            if batches[partition].append(key=key, value=entry.value(), timestamp=None) is None:
                await flush(partition)
                batches[partition].append(key=key, value=entry.value(), timestamp=None)
        for partition in partitions:
            if batches[partition].record_count():
                await flush(partition)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


def start_replica(servers: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "modstream", "verdicts", "--bootstrap-servers", servers,
        "--port", str(port), "--group-id", f"bench-{uuid.uuid4().hex[:8]}",
    ]  # fmt: skip
    with log.open("wb") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


async def metric(session: aiohttp.ClientSession, base: str, name: str) -> list[str]:
    async with session.get(f"{base}/metrics") as response:
        text = await response.text()
    return [line for line in text.splitlines() if line.startswith(name)]


async def wait_ready(
    session: aiohttp.ClientSession, base: str, process: Any, limit_s: float
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if process.poll() is not None:
            raise RuntimeError(f"modstream verdicts exited with {process.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not ready after {limit_s} s")


def subjects(posts: int, images: int, count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` (kind, value) lookups over the loaded table, 1 in 20 of them unknown."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        p = rng.randrange(posts) if n % 20 else posts + rng.randrange(posts)  # unknown
        url = url_of(p, rng.randrange(images))
        kind = ("post", "url", "sha256")[n % 3]
        out.append((kind, {"post": post_of(p), "url": url, "sha256": sha_of(url)}[kind]))
    return out


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 50) * 1000, 3),
        "p99_ms": round(percentile(ordered, 99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


async def open_loop(rate: float, duration_s: float, send: Any) -> tuple[list[float], int]:
    """Call ``send(n)`` ``rate`` times a second for ``duration_s``; each latency from its due
    time; the count of answers that were not 200/404."""
    latencies: list[float] = []
    failures = 0

    async def one(n: int, due: float) -> None:
        nonlocal failures
        ok = await send(n)
        latencies.append(time.monotonic() - due)
        failures += not ok

    tasks = []
    start = time.monotonic() + 0.1
    total = int(rate * duration_s)
    for n in range(total):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    return latencies, failures


async def single_lookups(session: aiohttp.ClientSession, base: str, args: Any) -> dict[str, Any]:
    picks = subjects(args.posts, args.images, int(args.rate * args.duration), seed=11)
    urls = [f"{base}/v1/verdicts?{kind}={value}" for kind, value in picks]

    async def send(n: int) -> bool:
        async with session.get(urls[n]) as response:
            await response.read()
            return response.status in (200, 404)

    latencies, failures = await open_loop(args.rate, args.duration, send)
    return {"rate": args.rate, "duration_s": args.duration, "failures": failures,
            **summary(latencies)}  # fmt: skip


async def batch_lookups(session: aiohttp.ClientSession, base: str, args: Any) -> dict[str, Any]:
    count = int(args.batch_rate * args.duration)
    picks = subjects(args.posts, args.images, count * args.batch, seed=13)
    bodies = [
        orjson.dumps({"subjects": [{kind: value} for kind, value in picks[n * args.batch :
                                                                           (n + 1) * args.batch]]})
        for n in range(count)
    ]  # fmt: skip

    async def send(n: int) -> bool:
        headers = {"content-type": "application/json"}
        async with session.post(f"{base}/v1/verdicts", data=bodies[n], headers=headers) as response:
            body = await response.json(loads=orjson.loads)
            return response.status == 200 and len(body["verdicts"]) == args.batch

    latencies, failures = await open_loop(args.batch_rate, args.duration, send)
    return {"batch": args.batch, "rate": args.batch_rate, "duration_s": args.duration,
            "failures": failures, **summary(latencies)}  # fmt: skip


async def freshness(session: aiohttp.ClientSession, base: str, servers: str,
                    args: Any) -> dict[str, Any]:  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=0)
    await producer.start()
    visible: list[float] = []
    missing = 0

    async def watch(url: str, published_at: float) -> None:
        nonlocal missing
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            async with session.get(f"{base}/v1/verdicts", params={"url": url}) as response:
                await response.read()
                if response.status == 200:
                    visible.append(time.time() - published_at)
                    return
            await asyncio.sleep(0.01)
        missing += 1

    tag = uuid.uuid4().hex[:8]
    watchers = []
    try:
        start = time.monotonic()
        for n in range(int(args.fresh_rate * args.duration)):
            delay = start + n / args.fresh_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            url = f"https://cdn.bench.example/fresh/{tag}/{n}.jpg"
            flagged = n % 2 == 0
            published_at = time.time()
            record = {
                "id": f"{tag}-{n}", "url": url, "source": "bench",
                "meta": {"post": f"at://did:plc:fresh/app.bsky.feed.post/{tag}{n}"},
                "published_at": published_at, "nsfw": 0.91 if flagged else 0.01,
                "decision": "flagged" if flagged else "safe", "sha256": sha_of(url),
            }  # fmt: skip
            topic = TOPICS.flagged if flagged else TOPICS.safe
            await producer.send(topic, orjson.dumps(record), key=record["id"].encode())
            watchers.append(asyncio.create_task(watch(url, published_at)))
        await asyncio.gather(*watchers)
    finally:
        await producer.stop()
    return {"rate": args.fresh_rate, "duration_s": args.duration, "missing": missing,
            **summary(visible)}  # fmt: skip


async def peer_scan(servers: str, topic: str, post: str) -> dict[str, Any]:
    """The peer: one post's verdict without the service, by reading the verdict topic."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    started = time.monotonic()
    try:
        assignment = consumer.assignment()
        while not assignment:
            await asyncio.sleep(0.01)
            assignment = consumer.assignment()
        ends = await consumer.end_offsets(list(assignment))
        found, read = 0, 0
        done = {tp for tp, end in ends.items() if end == 0}
        while len(done) < len(ends):
            for tp, messages in (await consumer.getmany(timeout_ms=200, max_records=10000)).items():
                read += len(messages)
                for message in messages:
                    if orjson.loads(message.value).get("post") == post:
                        found += 1
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    done.add(tp)
        return {"seconds": round(time.monotonic() - started, 2), "records_read": read,
                "images_found": found}  # fmt: skip
    finally:
        await consumer.stop()


async def bench(args: Any) -> dict[str, Any]:
    sys.path.insert(0, str(TESTS))
    from apache_kafka import ApacheKafka, kafka_classpath

    classpath = kafka_classpath(Path.home() / ".cache" / "modstream-dev")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-verdicts-") as directory:
        async with ApacheKafka(Path(directory), classpath, heap_mb=1024) as kafka:
            servers = kafka.bootstrap_servers
            await ensure_topics(KafkaSettings(bootstrap_servers=servers), [
                TopicSpec(TOPICS.verdicts, PARTITIONS, compacted=True),
                *(TopicSpec(topic, 4) for topic in (TOPICS.flagged, TOPICS.review, TOPICS.safe,
                                                    TOPICS.matched, TOPICS.reviewed)),
            ])  # fmt: skip
            took = await load(servers, TOPICS.verdicts, args.posts, args.images)
            images = args.posts * args.images
            results["load"] = {"posts": args.posts, "images": images, "seconds": round(took, 1),
                               "per_s": round(images / took)}  # fmt: skip
            print(f"loaded {images} entries in {took:.1f} s", flush=True)
            results["peer_scan"] = await peer_scan(servers, TOPICS.verdicts,
                                                   post_of(args.posts - 1))  # fmt: skip
            print(f"peer: {results['peer_scan']}", flush=True)

            port = free_loopback_port()
            base = f"http://127.0.0.1:{port}"
            process = start_replica(servers, port, Path(directory) / "verdicts.log")
            try:
                connector = aiohttp.TCPConnector(limit=args.connections)
                async with aiohttp.ClientSession(connector=connector) as session:
                    ready = await wait_ready(session, base, process, limit_s=300)
                    (rebuild,) = await metric(session, base, "modstream_verdict_rebuild_seconds ")
                    results["rebuild"] = {
                        "ready_s": round(ready, 1),
                        "rebuild_s": round(float(rebuild.split()[1]), 1),
                        **{k: round(v / 1024) for k, v in memory_kb(process.pid).items()},
                    }
                    results["rebuild"]["rss_mb"] = results["rebuild"].pop("VmRSS")
                    results["rebuild"]["peak_rss_mb"] = results["rebuild"].pop("VmHWM")
                    print(f"rebuild: {results['rebuild']}", flush=True)
                    results["single"] = await single_lookups(session, base, args)
                    print(f"single lookups: {results['single']}", flush=True)
                    results["batch"] = await batch_lookups(session, base, args)
                    print(f"batch lookups: {results['batch']}", flush=True)
                    results["freshness"] = await freshness(session, base, servers, args)
                    print(f"freshness: {results['freshness']}", flush=True)
                    handler = "modstream_verdict_lookup_seconds_sum"
                    results["handler"] = await metric(session, base, handler)
                    results["after"] = {k: round(v / 1024)
                                        for k, v in memory_kb(process.pid).items()}  # fmt: skip
            finally:
                process.terminate()
                process.wait(timeout=30)
    return results


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=2, help="images per post")
    parser.add_argument("--rate", type=float, default=1000.0, help="single lookups per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each load")
    parser.add_argument("--batch", type=int, default=100, help="subjects per batch lookup")
    parser.add_argument("--batch-rate", type=float, default=50.0, help="batches per second")
    parser.add_argument("--fresh-rate", type=float, default=20.0, help="results per second")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "verdicts.json")
    args = parser.parse_args()
    model, flags = cpu_model()
    print(f"CPU: {model}; flags: {' '.join(flags)}; {os.cpu_count()} cores", flush=True)
    results = {"cpu": model, "flags": flags, "cores": os.cpu_count(), **asyncio.run(bench(args))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
