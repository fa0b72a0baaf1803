"""A record the broker refuses for good never stalls its partition.

The case from production: an incoming event of 1,048,090 bytes (its ``meta`` carries a large
string) scores to a result record over the producer's 1 MiB request limit. Its answer is one
error record (``record_too_large``, the size and the limit named, ``meta`` dropped); every later
event is answered, the group's committed offset moves past it, and SIGTERM ends the scorer in
seconds. On Apache Kafka the same holds when the broker itself refuses the record (a result topic
whose ``max.message.bytes`` is lowered), and a result topic the cluster's ACLs deny stops the
scorer with one line (``broker_denied``, exit 1) instead of hanging.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from apache_kafka import ApacheKafka
from children import reap, terminate
from requirements import unavailable

from modstream.demo.imageserver import ImageServer
from modstream.kafka.producers import MAX_REQUEST_BYTES
from modstream.pipeline.stream.topics import Topics

from .conftest import Broker
from .support import OutputReader, committed_offsets, end_offsets, produce, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")

POISON_BYTES = 1_048_090  # the incoming event's size, as seen in production
BEFORE, AFTER = 3, 20  # events before and after the poison one, on the same partition
INCOMING_LIMIT = str(4 * 1024 * 1024)  # images.incoming takes events of up to 4 MiB
SIGTERM_WITHIN_S = 10.0


def _event(n: int, url: str, *, size: int = 0) -> bytes:
    """Event ``n``; with ``size``, its ``meta`` is padded so that the event is ``size`` bytes."""
    event = {"id": f"poison-{n:03d}", "url": f"{url}?n={n}", "source": "poison", "meta": {}}
    if size:
        event["meta"] = {"blob": ""}
        event["meta"] = {"blob": "x" * (size - len(orjson.dumps(event)))}
    value = orjson.dumps(event)
    assert not size or len(value) == size
    return value


async def _create_topics(servers: str, topics: Topics, *, result_limit: int | None = None) -> None:
    """One partition each (so the poison event has later events behind it); the result topics
    (all but errors) with ``max.message.bytes`` lowered to ``result_limit`` if given."""
    lowered = {"max.message.bytes": str(result_limit)} if result_limit else {}
    results = [topics.flagged, topics.review, topics.safe, topics.matched]
    new = [NewTopic(topics.incoming, 1, 1, topic_configs={"max.message.bytes": INCOMING_LIMIT})]
    new += [NewTopic(name, 1, 1, topic_configs=lowered) for name in results]
    new += [NewTopic(topics.errors, 1, 1)]
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics(new)
        for _attempt in range(200):  # Apache Kafka answers before its metadata has them
            described = await admin.describe_topics([topic.name for topic in new])
            if all(t["error_code"] == 0 and t["partitions"] for t in described):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the topics never appeared")
    finally:
        await admin.close()


def _start_scorer(
    servers: str, prefix: str, group: str, cache_dir: Path, log: Path
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "modstream", "run", "--role", "scorer", "--topic-prefix", prefix,
        "--bootstrap-servers", servers, "--metrics-port", "0", "--allow-cidr", "127.0.0.0/8",
        "--cache-dir", str(cache_dir), "--group-id", group,
        "--session-timeout", "2", "--fetch-max-wait", "0.02",
    ]  # fmt: skip
    with log.open("ab") as sink:
        return subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=sink, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def _alive(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is not None:
        raise AssertionError(f"the scorer exited with {process.returncode}:\n{_tail(log)}")


async def _answers_past_the_poison(
    servers: str, topics: Topics, poison_size: int, cache_dir: Path, log: Path
) -> dict[str, object]:
    """Run a scorer over BEFORE events, one of ``poison_size`` bytes, AFTER events; check that
    each has exactly one output, that the group commits to the end, and that SIGTERM ends it in
    seconds. Returns the poison event's output."""
    group = unique_group("poison")
    async with ImageServer() as server:
        assert server.served is not None
        url = server.served.image_urls()[0]
        values = [_event(n, url) for n in range(BEFORE)] + [_event(BEFORE, url, size=poison_size)]
        values += [_event(n, url) for n in range(BEFORE + 1, BEFORE + 1 + AFTER)]
        await produce(servers, topics.incoming, values, partitions=1)
        ids = {orjson.loads(value)["id"] for value in values}
        prefix = topics.incoming.removesuffix(".incoming")
        scorer = _start_scorer(servers, prefix, group, cache_dir, log)
        try:
            async with OutputReader(servers, topics.outputs()) as reader:
                await reader.wait_until(
                    lambda outputs: {o.record.get("id") for o in outputs} >= ids,
                    timeout_s=90,
                    what="an output for every event, the poison one's included",
                    alive=lambda: _alive(scorer, log),
                )
                ends = await end_offsets(servers, topics.incoming)
                for _attempt in range(100):  # the commit tick runs every 0.5 s
                    committed = await committed_offsets(servers, group, topics.incoming, ends)
                    if committed == ends:
                        break
                    await asyncio.sleep(0.1)
                assert committed == ends, "the committed offset did not move past the poison"
                stopping = time.monotonic()
                returncode = await terminate(scorer)
                seconds = time.monotonic() - stopping
                await reader.read_to_end()
                outputs = list(reader.outputs)
        finally:
            reap(scorer)
    print(f"\npoison record: SIGTERM to exit {seconds:.1f} s")
    assert returncode == 0, _tail(log)
    assert seconds < SIGTERM_WITHIN_S
    assert Counter(o.record.get("id") for o in outputs) == dict.fromkeys(ids, 1)
    [answer] = [o for o in outputs if o.record["id"] == "poison-003"]
    assert answer.topic == topics.errors
    others = [o for o in outputs if o.record["id"] != "poison-003"]
    assert all(o.topic != topics.errors for o in others), [o.record for o in others]
    return answer.record


async def test_a_result_over_the_request_limit_is_answered_by_one_error_record(
    any_broker: Broker, tmp_path: Path, ov_cache_dir: Path
) -> None:
    """The production case, on tansu and Apache Kafka: the result would be 1,048,739 bytes, over
    the producer's max_request_size, so the poison event is answered on the errors topic."""
    servers = any_broker.bootstrap_servers
    topics = Topics.with_prefix(f"poison-{uuid.uuid4().hex[:8]}")
    await _create_topics(servers, topics)
    record = await _answers_past_the_poison(
        servers, topics, POISON_BYTES, ov_cache_dir, tmp_path / "scorer.log"
    )
    error = record["error"]
    assert isinstance(error, dict)
    assert error["kind"] == "record_too_large"
    assert error["limit"] == MAX_REQUEST_BYTES
    assert MAX_REQUEST_BYTES < error["size"] < POISON_BYTES + 4096
    assert f"{error['size']:,} bytes" in error["message"]
    assert f"{MAX_REQUEST_BYTES:,} bytes" in error["message"]
    assert record["dropped"] == ["meta"]
    assert "meta" not in record
    assert record["refused_topic"] in (topics.flagged, topics.review, topics.safe)
    assert record["decision"] in ("flagged", "review", "safe")  # the verdict is kept
    assert len(orjson.dumps(record)) < 20_000


async def test_a_result_the_broker_refuses_as_too_large_for_its_topic_is_answered_too(
    apache_kafka: ApacheKafka | None, tmp_path: Path, ov_cache_dir: Path
) -> None:
    """Apache Kafka, result topics with max.message.bytes lowered to 20,000: a result of ~100 kB
    passes the producer's check and is refused by the broker, which names the topic's limit."""
    if apache_kafka is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    servers = apache_kafka.bootstrap_servers
    topics = Topics.with_prefix(f"poison-topic-{uuid.uuid4().hex[:8]}")
    await _create_topics(servers, topics, result_limit=20_000)
    record = await _answers_past_the_poison(
        servers, topics, 100_000, ov_cache_dir, tmp_path / "scorer.log"
    )
    error = record["error"]
    assert isinstance(error, dict)
    assert error["kind"] == "record_too_large"
    assert error["limit"] == 20_000
    assert 100_000 < error["size"] < 104_000
    assert f"the max.message.bytes of {record['refused_topic']}" in error["message"]
    assert record["dropped"] == ["meta"]


@pytest.fixture(scope="module")
def denying_kafka_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("denying-kafka")


async def test_a_result_topic_the_acls_deny_stops_the_scorer_in_one_line(
    kafka_jars: str | None, denying_kafka_dir: Path, tmp_path: Path, ov_cache_dir: Path
) -> None:
    """Apache Kafka with an authorizer, the scorer's principal denied WRITE on the result topics:
    ``modstream run`` exits 1 within seconds, its last line ``broker_denied`` naming a topic, with
    no traceback; nothing is committed, so a start after the ACLs are fixed answers every event."""
    if kafka_jars is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    authorizer = {
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "true",  # only the ACLs below are written
    }
    async with ApacheKafka(denying_kafka_dir, kafka_jars, config=authorizer) as kafka:
        servers = kafka.bootstrap_servers
        topics = Topics.with_prefix(f"denied-{uuid.uuid4().hex[:8]}")
        await _create_topics(servers, topics)
        results = [topics.flagged, topics.review, topics.safe, topics.matched]
        named = [argument for name in results for argument in ("--topic", name)]
        # An ACL on a topic ends "allowed if no ACL is found" for it: allow all, then deny WRITE.
        for grant in (("--allow-principal", "User:ANONYMOUS", "--operation", "All"),
                      ("--deny-principal", "User:ANONYMOUS", "--operation", "Write")):  # fmt: skip
            await kafka.acls("--add", *grant, *named)
        group = unique_group("denied")
        log = tmp_path / "scorer.log"
        async with ImageServer() as server:
            assert server.served is not None
            url = server.served.image_urls()[0]
            await produce(servers, topics.incoming, [_event(n, url) for n in range(5)],
                          partitions=1)  # fmt: skip
            started = time.monotonic()
            scorer = _start_scorer(servers, topics.incoming.removesuffix(".incoming"), group,
                                   ov_cache_dir, log)  # fmt: skip
            try:
                returncode = await asyncio.to_thread(scorer.wait, 90)
            finally:
                reap(scorer)
        seconds = time.monotonic() - started
        stderr = log.read_text(errors="replace")
        committed = await committed_offsets(servers, group, topics.incoming, [0])
    print(f"\ndenied result topic: exit {returncode} after {seconds:.1f} s")
    assert returncode == 1, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("modstream run: broker_denied: the broker denies writing to "), last
    assert any(name in last for name in results), last
    assert "Traceback" not in stderr
    assert committed == {}
