"""Connectors on a real broker: late brokers, kill -9 and restart, backfills scored end to end."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from children import reap, terminate
from replicas.jetstream import JetstreamReplica, images, post

from modstream.connectors.checkpoints import DirectoryCheckpoints, MemoryCheckpoints
from modstream.connectors.publisher import PublisherConfig
from modstream.connectors.runner import run_connectors
from modstream.connectors.synthetic import SyntheticConfig, SyntheticFirehose
from modstream.demo.imageserver import sample_images
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics, free_loopback_port
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.stream.topics import Topics

from .conftest import Broker
from .support import OutputReader, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _read_all(servers: str, topic: str) -> list[dict[str, object]]:
    async with OutputReader(servers, [topic]) as reader:
        await reader.read_to_end()
        return [output.record for output in reader.outputs]


async def test_the_publisher_waits_for_a_late_broker_and_drops_nothing(tmp_path: Path) -> None:
    """With no broker the connector retries and stays up; once one starts, every event lands."""
    port = free_loopback_port()
    servers = f"127.0.0.1:{port}"
    stop = asyncio.Event()
    checkpoints = MemoryCheckpoints()
    config = SyntheticConfig(urls=("http://h/a.jpg",), rate_per_s=500, events=20, resume=True)
    source = SyntheticFirehose(config)
    task = asyncio.create_task(
        run_connectors(
            [source],
            kafka=KafkaSettings(bootstrap_servers=servers),
            config=PublisherConfig(topic="late.incoming"),
            checkpoints=checkpoints,
            stop=stop,
        )
    )
    try:
        done, _ = await asyncio.wait({task}, timeout=1.5)
        assert not done, "the connector gave up while the broker was away"
        async with EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log") as broker:
            await ensure_topics(broker.kafka, [TopicSpec("late.incoming", 2)])
            async with asyncio.timeout(60):
                await task
            records = await _read_all(broker.bootstrap_servers, "late.incoming")
    finally:
        stop.set()
        if not task.done():
            task.cancel()
    assert sorted(str(r["id"]) for r in records) == sorted(f"synthetic-{n}" for n in range(20))
    assert checkpoints.positions == {source.checkpoint_key: "20"}


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)


def _text(log: Path) -> str:
    return log.read_text()[-3000:]


def _key(state: Path) -> Callable[[], str]:
    """The one checkpoint key the connector writes under ``state`` (empty until it saves)."""

    def key() -> str:
        files = list(state.glob("*.checkpoint.json")) if state.is_dir() else []
        return files[0].name.removesuffix(".checkpoint.json") if files else "none"

    return key


def _connector_command(servers: str, prefix: str, state_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "modstream", "run", "--role", "connector",
        "--bootstrap-servers", servers, "--topic-prefix", prefix, "--metrics-port", "0",
        "--state-dir", str(state_dir), "--source", "synthetic",
        "--source-option", "urls=http://127.0.0.1:9/a.jpg", "--source-option", "rate=60",
        "--source-option", "events=240", "--source-option", "resume=true",
    ]  # fmt: skip


async def test_a_connector_killed_with_sigkill_resumes_from_its_checkpoint_and_loses_nothing(
    any_broker: Broker, tmp_path: Path
) -> None:
    """kill -9 mid-stream, restart: every event is on the topic; repeats are few and share ids."""
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    incoming = Topics.with_prefix(prefix).incoming
    command = _connector_command(any_broker.bootstrap_servers, prefix, tmp_path / "state")
    first = _spawn(command, tmp_path / "first.log")
    try:
        checkpoint = DirectoryCheckpoints(tmp_path / "state")
        key = _key(tmp_path / "state")
        async with asyncio.timeout(60):
            while int(checkpoint.load(key()) or 0) < 80:
                assert first.poll() is None, "the connector exited early"
                await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait)
    finally:
        reap(first)
    saved = int(checkpoint.load(key()) or 0)
    second = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=90)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    records = await _read_all(any_broker.bootstrap_servers, incoming)
    counts = Counter(str(record["id"]) for record in records)
    assert set(counts) == {f"synthetic-{n}" for n in range(240)}
    repeats = sum(counts.values()) - len(counts)
    assert repeats <= 240 - saved  # only events after the saved position can come twice


@pytest.fixture
def backfill_tree(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    for index, (name, body) in enumerate(sample_images().items()):
        folder = root / f"user{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    (root / "user0" / "page.jpg").write_bytes(b"<!doctype html><html>not an image</html>")
    (root / "secret").mkdir()
    (root / "secret" / "keys.jpg").write_bytes(b"\xff\xd8 not for the scorer")
    return root


async def test_a_backfill_is_scored_end_to_end_and_cannot_leave_its_root(
    any_broker: Broker, backfill_tree: Path, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """Every image file of the tree gets one output; ``../`` and foreign schemes are refused."""
    listing = tmp_path / "urls.txt"
    allowed = backfill_tree / "user0"
    inside = sorted(allowed.iterdir())
    listing.write_text(
        "\n".join(
            [
                *(path.as_uri() for path in inside),
                f"file://{allowed}/../secret/keys.jpg",
                "gopher://example.com/1",
                "FILE:///etc/passwd",
            ]
        )
    )
    prefix = f"bf-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    command = [
        sys.executable, "-m", "modstream", "run",
        "--bootstrap-servers", any_broker.bootstrap_servers, "--topic-prefix", prefix,
        "--group-id", unique_group("bf"), "--metrics-port", "0",
        "--cache-dir", str(ov_cache_dir), "--session-timeout", "2",
        "--fetch-max-wait", "0.02", "--state-dir", str(tmp_path / "state"),
        "--allow-file-root", str(allowed), "--source", f"backfill:{listing}",
    ]  # fmt: skip
    log_path = tmp_path / "run.log"
    process = _spawn(command, log_path)
    expected = len(inside) + 3
    try:
        for _attempt in range(200):
            assert process.poll() is None, log_path.read_text()[-2000:]
            try:
                reader = OutputReader(any_broker.bootstrap_servers, topics.outputs())
                await reader.__aenter__()
                break
            except AssertionError:  # the topics are not created yet
                await asyncio.sleep(0.1)
        try:
            await reader.wait_until(
                lambda outputs: len(outputs) >= expected, timeout_s=90, what="backfill outputs"
            )
            await reader.read_to_end()
            outputs = list(reader.outputs)
        finally:
            await reader.__aexit__(None, None, None)
        assert await terminate(process) == 0
    finally:
        reap(process)
    by_url = {str(o.record["url"]): o for o in outputs}
    assert len(outputs) == expected == len(by_url)
    for path in inside:
        output = by_url[path.as_uri()]
        if path.name == "page.jpg":
            assert output.record["error"]["kind"] == "not_an_image"  # type: ignore[index]
        else:
            assert output.topic != topics.errors, output.record
            assert output.record["source"] == "backfill"
    kinds = {
        url: o.record["error"]["kind"]  # type: ignore[index]
        for url, o in by_url.items()
        if o.topic == topics.errors and not url.endswith("page.jpg")
    }
    assert kinds == {
        f"file://{allowed}/../secret/keys.jpg": "blocked_path",
        "gopher://example.com/1": "invalid_url",
        "FILE:///etc/passwd": "blocked_path",
    }


async def test_a_jetstream_cursor_is_resumed_on_its_cluster_and_not_on_a_new_one(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A connector restarted against the cluster its checkpoint was made on subscribes with a
    cursor; against a new embedded broker (same state directory) it starts live, saying why."""
    prefix = f"jsc-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    did = "did:plc:alice4xyzexampleexample"
    async with JetstreamReplica() as jetstream, EmbeddedBroker() as other:

        def command(servers: str) -> list[str]:
            return [
                sys.executable, "-m", "modstream", "run", "--role", "connector",
                "--source", "jetstream", "--jetstream-url", jetstream.url,
                "--bootstrap-servers", servers, "--topic-prefix", prefix,
                "--metrics-port", "0", "--state-dir", str(state),
            ]  # fmt: skip

        async def run_once(servers: str, log: Path, subscriptions: int) -> str:
            process = _spawn(command(servers), log)
            try:
                async with asyncio.timeout(60):
                    while len(jetstream.subscriptions) < subscriptions:
                        assert process.poll() is None, _text(log)
                        await asyncio.sleep(0.05)
                    if subscriptions == 1:  # publish one image post, wait for its checkpoint
                        start = 1_763_900_000_000_000
                        await jetstream.publish(
                            post(did, "3kone", start, images((f"bafkrei{'q' * 52}", "")))
                        )
                        while DirectoryCheckpoints(state).load(_key(state)()) is None:
                            assert process.poll() is None, _text(log)
                            await asyncio.sleep(0.05)
                assert await terminate(process) == 0, _text(log)
            finally:
                reap(process)
            return _text(log)

        await run_once(broker.bootstrap_servers, tmp_path / "first.log", 1)
        same = await run_once(broker.bootstrap_servers, tmp_path / "same.log", 2)
        fresh = await run_once(other.bootstrap_servers, tmp_path / "fresh.log", 3)
    first, resumed, started = jetstream.subscriptions
    assert first.cursor is None and resumed.cursor is not None, same
    assert started.cursor is None, fresh
    assert "starts over: the checkpoint at 1763900000000000 was saved when partition" in fresh
