"""Exactly once on Apache Kafka: a read_committed reader of the result topics sees every event's
result once, through a broker SIGKILL and restart, a scorer kill -9 and restart, a second scorer
joining and leaving, a scorer stalled (SIGSTOP) until its partitions moved, and one stalled until
the coordinator timed its transaction out.

Each test runs its own Apache Kafka node (it is killed), its own topics and group; a
read_uncommitted reader of the same topics shows the aborted copies the faults left, so the
count could have gone wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from apache_kafka import ApacheKafka
from children import reap, spawn, terminate
from requirements import unavailable

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.stream.topics import Topics

from .support import OutputReader, unique_group

PARTITIONS = 4
RATE = 15.0  # events a second
# The coordinator looks for transactions past their timeout this often (Kafka's default: 10 s).
BROKER = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"}


def _scorer(
    servers: str,
    prefix: str,
    group: str,
    cache_dir: Path,
    log: Path,
    *,
    interval: float = 0.1,
    extra: tuple[str, ...] | list[str] = (),
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "modstream", "run", "--role", "scorer", "--topic-prefix", prefix,
        "--bootstrap-servers", servers, "--metrics-port", "0", "--allow-cidr", "127.0.0.0/8",
        "--cache-dir", str(cache_dir), "--group-id", group, "--session-timeout", "6",
        "--delivery", "exactly-once", "--transaction-interval", str(interval), *extra,
    ]  # fmt: skip
    return spawn(command, log, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _assigned(log: Path) -> bool:
    """Has the scorer logging to ``log`` been given partitions (its sink says so)?"""
    return "assigned partitions: ['" in log.read_text(errors="replace")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


@dataclass(frozen=True)
class _Stream:
    kafka: ApacheKafka
    topics: Topics
    prefix: str
    group: str
    urls: list[str]

    @property
    def servers(self) -> str:
        return self.kafka.bootstrap_servers


@contextlib.asynccontextmanager
async def _stream(kafka_jars: str | None, root: Path, tag: str) -> AsyncIterator[_Stream]:
    """An Apache Kafka node of the test's own, its topics, a group name and image URLs."""
    if kafka_jars is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    prefix = f"{tag}-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    async with (
        ApacheKafka(root / "kafka", kafka_jars, config=BROKER) as kafka,
        ImageServer() as server,
    ):
        specs = [TopicSpec(name, PARTITIONS) for name in (topics.incoming, *topics.outputs())]
        await ensure_topics(KafkaSettings(bootstrap_servers=kafka.bootstrap_servers), specs)
        assert server.served is not None
        yield _Stream(kafka, topics, prefix, unique_group(tag), server.served.image_urls())


async def _publish_events(
    servers: str, topic: str, urls: list[str], count: int, sent: list[str]
) -> None:
    """``count`` events at RATE a second, round-robin over the partitions, paced one after the
    other (no burst after a broker restart: events keep arriving while the faults come); an
    idempotent producer that waits out the restart, so no event is stored twice."""
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True,
                                request_timeout_ms=60_000)  # fmt: skip
    await producer.start()
    try:
        for n in range(count):
            if n:
                await asyncio.sleep(1 / RATE)
            event_id = f"once-{n:03d}"
            url = f"{urls[n % len(urls)]}?n={n}"
            value = orjson.dumps({"id": event_id, "url": url, "source": "once"})
            await producer.send_and_wait(topic, value, key=event_id.encode(),
                                         partition=n % PARTITIONS)  # fmt: skip
            sent.append(event_id)
    finally:
        await producer.stop()


async def _until(condition: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def _committed_ids(servers: str, topics: Topics, expected: set[str]) -> Counter[str]:
    """Every result id a read_committed reader sees once ``expected`` are all there."""
    async with OutputReader(servers, topics.outputs(), isolation="read_committed") as reader:
        await reader.wait_until(
            lambda outputs: {o.record["id"] for o in outputs} >= expected,
            timeout_s=120, what="a committed result for every event",
        )  # fmt: skip
        await reader.read_to_end()
        errors = [o.record for o in reader.outputs if o.topic == topics.errors]
        assert errors == [], errors[:3]
        return Counter(o.record["id"] for o in reader.outputs)


async def _open_transaction(
    servers: str, topics: Topics, scorer: subprocess.Popen[bytes], log: Path, *, stop: bool = False
) -> None:
    """Return the moment a transaction with results in it is open: a result partition's last
    stable offset (what read_committed may read) is below its high watermark read just before
    (aborted records are stable, so only an open transaction holds it back). ``stop``: SIGSTOP
    the scorer then, and look again once it is stopped (the transaction may commit in the moment
    before the signal lands: then it is resumed and the watch goes on)."""
    readers = {
        isolation: AIOKafkaConsumer(bootstrap_servers=servers, isolation_level=isolation)
        for isolation in ("read_uncommitted", "read_committed")
    }
    for reader in readers.values():
        await reader.start()
    try:
        partitions = [TopicPartition(topic, n) for topic in topics.outputs()
                      for n in range(PARTITIONS)]  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            assert scorer.poll() is None, _tail(log)
            assert time.monotonic() < deadline, f"no open transaction seen:\n{_tail(log)}"
            high = await readers["read_uncommitted"].end_offsets(partitions)
            stable = await readers["read_committed"].end_offsets(partitions)
            if any(stable[tp] < high[tp] for tp in partitions):
                if not stop:
                    return
                scorer.send_signal(signal.SIGSTOP)
                await asyncio.sleep(0.05)  # the signal lands
                high = await readers["read_uncommitted"].end_offsets(partitions)
                stable = await readers["read_committed"].end_offsets(partitions)
                if any(stable[tp] < high[tp] for tp in partitions):
                    return
                scorer.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.01)
    finally:
        for reader in readers.values():
            await reader.stop()


async def _uncommitted_count(servers: str, topics: Topics) -> int:
    async with OutputReader(servers, topics.outputs()) as reader:
        await reader.read_to_end()
        return len(reader.outputs)


@pytest.mark.timeout(300)
async def test_every_event_once_through_a_broker_kill_a_scorer_kill_and_a_rebalance(
    kafka_jars: str | None, tmp_path: Path, ov_cache_dir: Path
) -> None:
    """300 events at 15/s; meanwhile the broker is SIGKILLed and restarted, the scorer is
    killed -9 and restarted, and a second scorer joins and is stopped with SIGTERM: the
    read_committed reader sees every event exactly once."""
    events = 300
    async with _stream(kafka_jars, tmp_path, "once") as stream:
        kafka, servers, topics = stream.kafka, stream.servers, stream.topics
        prefix, group, urls = stream.prefix, stream.group, stream.urls
        logs = [tmp_path / f"scorer-{n}.log" for n in range(3)]
        # The first scorer commits every second: its transactions hold results most of the time,
        # so the broker's and its own kill find some open (the aborted copies below).
        scorers = [_scorer(servers, prefix, group, ov_cache_dir, logs[0], interval=1.0)]
        sent: list[str] = []
        publishing = asyncio.create_task(
            _publish_events(servers, topics.incoming, urls, events, sent)
        )
        try:
            await _until(lambda: _assigned(logs[0]), "the first scorer given partitions", 90)
            await _until(lambda: len(sent) >= 60, "60 events sent", 60)
            await kafka.kill()  # the broker, mid-stream, transactions open
            await asyncio.sleep(3)
            await kafka.start()
            await _until(lambda: len(sent) >= 120, "120 events sent", 90)
            await _open_transaction(servers, topics, scorers[0], logs[0])
            scorers[0].send_signal(signal.SIGKILL)  # the scorer, mid-transaction
            await asyncio.to_thread(scorers[0].wait, 10)
            scorers.append(_scorer(servers, prefix, group, ov_cache_dir, logs[1]))
            await _until(lambda: len(sent) >= 180, "180 events sent", 60)
            scorers.append(_scorer(servers, prefix, group, ov_cache_dir, logs[2]))
            await _until(lambda: _assigned(logs[2]), "the second scorer given partitions", 90)
            await _until(lambda: len(sent) >= 250, "250 events sent", 60)
            assert await terminate(scorers[2]) == 0, _tail(logs[2])  # a rebalance, gracefully
            await publishing
            assert scorers[1].poll() is None, _tail(logs[1])
            counts = await _committed_ids(servers, topics, set(sent))
            everything = await _uncommitted_count(servers, topics)
            assert await terminate(scorers[1]) == 0, _tail(logs[1])
        finally:
            publishing.cancel()
            for scorer in scorers:
                reap(scorer)
    duplicates = {event: n for event, n in counts.items() if n > 1}
    print(f"\nexactly once: {len(sent)} events, {sum(counts.values())} committed results, "
          f"{everything} records read uncommitted (aborted copies included)")  # fmt: skip
    assert len(set(sent)) == events
    assert duplicates == {}
    assert set(counts) == set(sent)
    assert everything > sum(counts.values()), "no aborted copy: the faults hit no transaction"


@pytest.mark.timeout(300)
async def test_a_stalled_scorer_whose_partitions_moved_is_fenced_and_commits_nothing(
    kafka_jars: str | None, tmp_path: Path, ov_cache_dir: Path
) -> None:
    """A scorer stopped with SIGSTOP while its transactions hold results, until the group gives
    its partitions to another: resumed, it cannot commit (producer_fenced, one line, exit 1), and
    every event is still answered once."""
    events = 150
    async with _stream(kafka_jars, tmp_path, "zombie") as stream:
        servers, topics = stream.servers, stream.topics
        prefix, group, urls = stream.prefix, stream.group, stream.urls
        zombie_log, heir_log = tmp_path / "zombie.log", tmp_path / "heir.log"
        # A long interval: its transactions stay open, with results in them, most of the time.
        zombie = _scorer(servers, prefix, group, ov_cache_dir, zombie_log, interval=2.0)
        heir: subprocess.Popen[bytes] | None = None
        sent: list[str] = []
        publishing = asyncio.create_task(
            _publish_events(servers, topics.incoming, urls, events, sent)
        )
        try:
            await _open_transaction(servers, topics, zombie, zombie_log)
            zombie.send_signal(signal.SIGSTOP)
            heir = _scorer(servers, prefix, group, ov_cache_dir, heir_log)
            await _until(lambda: len(sent) >= events // 2 + 30, "more events sent", 60)
            async with OutputReader(servers, topics.outputs(), isolation="read_committed") as r:
                await r.wait_until(lambda outputs: len(outputs) >= events // 2, timeout_s=60,
                                   what="the heir answering the moved partitions")  # fmt: skip
            zombie.send_signal(signal.SIGCONT)
            code = await asyncio.to_thread(zombie.wait, 60)
            await publishing
            counts = await _committed_ids(servers, topics, set(sent))
            assert heir.poll() is None, _tail(heir_log)
            assert await terminate(heir) == 0, _tail(heir_log)
        finally:
            publishing.cancel()
            with contextlib.suppress(ProcessLookupError):
                zombie.send_signal(signal.SIGCONT)
            reap(zombie)
            if heir is not None:
                reap(heir)
    told = zombie_log.read_text(errors="replace")
    assert code == 1, _tail(zombie_log)
    (line,) = [line for line in told.splitlines() if line.startswith("modstream run: ")]
    assert line.startswith("modstream run: producer_fenced: the transactions of "), line
    assert {event: n for event, n in counts.items() if n > 1} == {}
    assert set(counts) == set(sent) and len(sent) == events


@pytest.mark.timeout(300)
async def test_a_timed_out_transaction_stops_its_scorer_and_loses_nothing(
    kafka_jars: str | None, tmp_path: Path, ov_cache_dir: Path
) -> None:
    """A scorer stopped with SIGSTOP for longer than its --transaction-timeout (2 s) while a
    transaction holds results, but not long enough to lose its partitions (session timeout
    30 s): the coordinator aborts the transaction and fences its producer; resumed, the scorer
    stops with one line (producer_fenced, exit 1); restarted, it answers every event once."""
    events = 120
    async with _stream(kafka_jars, tmp_path, "timeout") as stream:
        servers, topics = stream.servers, stream.topics
        logs = [tmp_path / "stalled.log", tmp_path / "restarted.log"]
        extra = ["--transaction-timeout", "2", "--session-timeout", "30"]
        scorers = [_scorer(servers, stream.prefix, stream.group, ov_cache_dir, logs[0],
                           interval=1.0, extra=extra)]  # fmt: skip
        sent: list[str] = []
        publishing = asyncio.create_task(
            _publish_events(servers, topics.incoming, stream.urls, events, sent)
        )
        try:
            await _until(lambda: len(sent) >= 30, "30 events sent", 90)
            await _open_transaction(servers, topics, scorers[0], logs[0], stop=True)
            await asyncio.sleep(5)  # the timeout, the coordinator's next look, and more
            scorers[0].send_signal(signal.SIGCONT)
            code = await asyncio.to_thread(scorers[0].wait, 60)
            scorers.append(_scorer(servers, stream.prefix, stream.group, ov_cache_dir, logs[1],
                                   extra=extra))  # fmt: skip
            await publishing
            counts = await _committed_ids(servers, topics, set(sent))
            everything = await _uncommitted_count(servers, topics)
            assert await terminate(scorers[1]) == 0, _tail(logs[1])
        finally:
            publishing.cancel()
            for scorer in scorers:
                with contextlib.suppress(ProcessLookupError):
                    scorer.send_signal(signal.SIGCONT)
                reap(scorer)
    told = logs[0].read_text(errors="replace")
    assert code == 1, _tail(logs[0])
    (line,) = [line for line in told.splitlines() if line.startswith("modstream run: ")]
    assert line.startswith("modstream run: producer_fenced: the transactions of "), line
    print(f"\ntimed out: {sum(counts.values())} committed results, {everything} read uncommitted")
    assert {event: n for event, n in counts.items() if n > 1} == {}
    assert set(counts) == set(sent) and len(sent) == events
    assert everything > sum(counts.values()), "no aborted copy: the stall hit no transaction"


@pytest.mark.timeout(240)
async def test_a_slow_image_holds_results_back_in_memory_never_a_transaction_open(
    kafka_jars: str | None, tmp_path: Path, ov_cache_dir: Path
) -> None:
    """Every tenth image trickles in slower than --fetch-timeout (8 s), itself longer than
    --transaction-timeout (3 s): the results after it in its partition wait for it in memory,
    so no transaction stays open while it waits (a batch slower than the transaction timeout
    does not time a transaction out: the scorer is never fenced), and each event is answered
    once, the slow ones by fetch_timeout."""
    events = 60
    async with _stream(kafka_jars, tmp_path, "slow") as stream:
        servers, topics = stream.servers, stream.topics
        base = stream.urls[0].split("/img/")[0]
        urls = [f"{base}/bad/slow" if n % 10 == 9 else stream.urls[n % len(stream.urls)]
                for n in range(events)]  # fmt: skip
        log = tmp_path / "scorer.log"
        scorer = _scorer(servers, stream.prefix, stream.group, ov_cache_dir, log,
                         extra=["--fetch-timeout", "8", "--transaction-timeout", "3"])  # fmt: skip
        sent: list[str] = []
        publishing = asyncio.create_task(
            _publish_events(servers, topics.incoming, urls, events, sent)
        )
        longest = 0.0
        try:
            readers = {
                isolation: AIOKafkaConsumer(bootstrap_servers=servers, isolation_level=isolation)
                for isolation in ("read_uncommitted", "read_committed")
            }
            for reader in readers.values():
                await reader.start()
            partitions = [TopicPartition(topic, n) for topic in topics.outputs()
                          for n in range(PARTITIONS)]  # fmt: skip
            open_since: dict[TopicPartition, float] = {}
            try:
                while not publishing.done() or len(open_since) > 0:
                    assert scorer.poll() is None, _tail(log)
                    high = await readers["read_uncommitted"].end_offsets(partitions)
                    stable = await readers["read_committed"].end_offsets(partitions)
                    now = time.monotonic()
                    for tp in partitions:
                        if stable[tp] < high[tp]:
                            longest = max(longest, now - open_since.setdefault(tp, now))
                        else:
                            open_since.pop(tp, None)
                    await asyncio.sleep(0.05)
            finally:
                for reader in readers.values():
                    await reader.stop()
            await publishing
            async with OutputReader(servers, topics.outputs(), isolation="read_committed") as r:
                await r.wait_until(lambda outputs: len({o.record["id"] for o in outputs}) >= events,
                                   timeout_s=90, what="every event answered")  # fmt: skip
                await r.read_to_end()
                outputs = list(r.outputs)
            assert await terminate(scorer) == 0, _tail(log)
        finally:
            publishing.cancel()
            reap(scorer)
    counts = Counter(o.record["id"] for o in outputs)
    slow = {f"once-{n:03d}" for n in range(events) if n % 10 == 9}
    timed_out = {o.record["id"] for o in outputs if o.topic == topics.errors
                 and o.record["error"]["kind"] == "fetch_timeout"}  # fmt: skip
    print(f"\nslow images: the longest open transaction seen lasted {longest:.2f} s")
    assert set(counts) == set(sent) and all(n == 1 for n in counts.values())
    assert timed_out == slow
    assert longest < 2.0, longest
