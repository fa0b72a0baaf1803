"""What only a real Apache Kafka can show: idempotent producers, and a broker restart mid-stream."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from apache_kafka import ApacheKafka
from children import reap, terminate
from requirements import unavailable

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics
from modstream.kafka.producers import start_producer
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.stream.topics import Topics

from .conftest import Broker
from .support import OutputReader, produce, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")
PARTITIONS = 4


async def test_producers_are_idempotent_exactly_where_the_broker_grants_it(
    any_broker: Broker,
) -> None:
    """Apache Kafka grants producer ids; the embedded broker refuses them and gets plain ones."""
    await ensure_topics(any_broker.kafka, [TopicSpec("idempotence-probe", 1)])
    started = await start_producer(any_broker.kafka, role="test", linger_ms=0)
    try:
        await started.producer.send_and_wait("idempotence-probe", b"x")
    finally:
        await started.producer.stop()
    assert started.idempotent is isinstance(any_broker, ApacheKafka)
    assert started.idempotent is not isinstance(any_broker, EmbeddedBroker)


def _scorer(servers: str, prefix: str, cache_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "modstream", "run", "--role", "scorer", "--topic-prefix", prefix,
        "--bootstrap-servers", servers, "--metrics-port", "0", "--allow-cidr", "127.0.0.0/8",
        "--cache-dir", str(cache_dir), "--group-id", unique_group("restart"),
        "--session-timeout", "6", "--fetch-max-wait", "0.05",
    ]  # fmt: skip
    with log.open("ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def _events(server: ImageServer, first: int, count: int) -> list[bytes]:
    assert server.served is not None
    urls = server.served.image_urls()
    return [
        orjson.dumps({"id": f"r-{n:03d}", "url": f"{urls[n % len(urls)]}?n={n}"})
        for n in range(first, first + count)
    ]


async def test_a_broker_killed_and_restarted_mid_stream_loses_no_event(
    kafka_jars: str | None, image_server: ImageServer, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """kill -9 of the broker while a scorer works, then a restart on the same log: the scorer
    keeps running, every event gets an output, and repeats are counted, not lost."""
    if kafka_jars is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    prefix = f"restart-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    log = tmp_path / "scorer.log"
    async with ApacheKafka(tmp_path / "kafka", kafka_jars) as kafka:
        servers = kafka.bootstrap_servers
        specs = [TopicSpec(name, PARTITIONS) for name in (topics.incoming, *topics.outputs())]
        await ensure_topics(KafkaSettings(bootstrap_servers=servers), specs)
        await produce(servers, topics.incoming, _events(image_server, 0, 40), partitions=4)
        scorer = _scorer(servers, prefix, ov_cache_dir, log)
        try:
            async with OutputReader(servers, topics.outputs()) as reader:
                await reader.wait_until(lambda o: len(o) >= 10, timeout_s=60, what="10 outputs")
            await kafka.kill()
            await asyncio.sleep(1.0)
            assert scorer.poll() is None, log.read_text()[-3000:]
            await kafka.start()
            await produce(servers, topics.incoming, _events(image_server, 40, 40), partitions=4)
            async with OutputReader(servers, topics.outputs()) as reader:
                await reader.wait_until(
                    lambda o: len({r.record["id"] for r in o}) >= 80,
                    timeout_s=120,
                    what="an output for each of the 80 events",
                    alive=lambda: _alive(scorer, log),
                )
                await reader.read_to_end()
                outputs = list(reader.outputs)
            assert await terminate(scorer) == 0, log.read_text()[-3000:]
        finally:
            reap(scorer)
    counts = Counter(str(o.record["id"]) for o in outputs)
    assert set(counts) == {f"r-{n:03d}" for n in range(80)}
    errors = [o.record for o in outputs if o.topic == topics.errors]
    assert errors == [], errors[:3]
    repeats = sum(counts.values()) - len(counts)
    print(f"\n[restart] {len(outputs)} outputs for 80 events, {repeats} repeats")


def _alive(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is not None:
        tail = log.read_text()[-3000:]
        raise AssertionError(f"the scorer exited with {process.returncode}: {tail}")
