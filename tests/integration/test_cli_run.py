"""``modstream run`` as a user starts it: roles, the synthetic source, metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import locations
import orjson
import pytest
from children import reap, terminate

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker, free_loopback_port
from modstream.pipeline.stream.topics import Topics

from .support import OutputReader, outputs_of_process, produce, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")
SAMPLE = locations.SAMPLES / "photo-a.jpg"


def _run_command(servers: str, prefix: str, cache_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "modstream", "run", "--bootstrap-servers", servers,
        "--topic-prefix", prefix, "--group-id", unique_group("cli"), "--allow-cidr", "127.0.0.0/8",
        "--cache-dir", str(cache_dir), "--session-timeout", "2", "--fetch-max-wait", "0.02",
        *extra,
    ]  # fmt: skip


def _spawn(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _wait_exit(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    return await asyncio.wait_for(asyncio.to_thread(process.wait), timeout_s)


async def test_role_all_with_synthetic_source_scores_serves_metrics_and_stops_on_sigterm(
    broker: EmbeddedBroker, image_server: ImageServer, ov_cache_dir: Path
) -> None:
    """Every synthetic event gets one output, /metrics shows them, and SIGTERM exits 0."""
    assert image_server.served is not None
    urls = [*image_server.served.image_urls()[:3], f"{image_server.served.base_url}/bad/html"]
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    port = free_loopback_port()
    command = _run_command(
        broker.bootstrap_servers, prefix, ov_cache_dir,
        "--role", "all", "--metrics-port", str(port), "--source", "synthetic",
        "--source-option", f"urls={','.join(urls)}", "--source-option", "rate=40",
        "--source-option", "events=12",
    )  # fmt: skip
    process = _spawn(command)
    try:
        reader = await outputs_of_process(broker.bootstrap_servers, topics, 12, process)
        ids = sorted(output.record["id"] for output in reader.outputs)
        await reader.__aexit__(None, None, None)
        assert ids == sorted(f"synthetic-{index}" for index in range(12))
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            text = await response.text()
        assert 'modstream_errors_total{kind="not_an_image"} 3.0' in text
        assert 'modstream_roundtrip_seconds_bucket{decision="' in text
        assert 'le="0.05"' in text
        assert await terminate(process) == 0
    finally:
        reap(process)


async def test_role_connector_publishes_its_events_and_exits(
    broker: EmbeddedBroker, ov_cache_dir: Path
) -> None:
    """A connector-only process puts every event on PREFIX.incoming and exits 0 by itself."""
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    command = _run_command(
        broker.bootstrap_servers, prefix, ov_cache_dir,
        "--role", "connector", "--metrics-port", "0", "--source", "synthetic",
        "--source-option", "urls=http://127.0.0.1:9/a.jpg", "--source-option", "rate=100",
        "--source-option", "events=5",
    )  # fmt: skip
    process = _spawn(command)
    try:
        assert await _wait_exit(process, 60) == 0
    finally:
        reap(process)
    async with OutputReader(broker.bootstrap_servers, [f"{prefix}.incoming"]) as reader:
        await reader.read_to_end()
        urls = sorted(output.record["url"] for output in reader.outputs)
    assert urls == sorted(f"http://127.0.0.1:9/a.jpg?n={index}" for index in range(5))


async def test_usage_errors_exit_2() -> None:
    """A connector role without a source, or an unknown policy, is a usage error."""
    for extra in (["--role", "connector"], ["--policy", "nonsense"]):
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "modstream", "run", "--metrics-port", "0", *extra],
            capture_output=True,
        )
        assert done.returncode == 2, (extra, done.stderr)
        assert b"modstream run:" in done.stderr


async def _get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(url) as response:
        return response.status, await response.json()


async def _readiness_until(
    session: aiohttp.ClientSession, url: str, wanted: int, timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status, body = await _get_json(session, f"{url}/readyz")
        except aiohttp.ClientConnectionError:  # not bound yet: the model is still compiling
            status, body = 0, {}
        if status == wanted:
            return body
        assert time.monotonic() < deadline, f"/readyz never answered {wanted}: {status} {body}"
        await asyncio.sleep(0.2)


async def test_the_api_in_the_scorer_process_shares_its_scores_and_follows_the_broker(
    image_server: ImageServer, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """``run --serve-port``: the API answers in the pipeline's process, finds by hash what the
    stream scored, and /readyz turns 503 (broker_unavailable) when the broker goes away."""
    assert image_server.served is not None
    prefix = f"api-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    port = free_loopback_port()
    api = f"http://127.0.0.1:{port}"
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    await broker.__aenter__()
    process: subprocess.Popen[bytes] | None = None
    try:
        command = _run_command(
            broker.bootstrap_servers, prefix, ov_cache_dir,
            "--role", "scorer", "--metrics-port", "0", "--serve-port", str(port),
        )  # fmt: skip
        process = _spawn(command)
        async with aiohttp.ClientSession() as session:
            assert (await _readiness_until(session, api, 200, 90)) == {"status": "ready"}
            url = image_server.served.image_urls()[0]
            await produce(
                broker.bootstrap_servers, topics.incoming,
                [orjson.dumps({"id": "from-the-stream", "url": url})], partitions=1,
            )  # fmt: skip
            async with OutputReader(broker.bootstrap_servers, topics.outputs()) as reader:
                await reader.wait_until(lambda o: len(o) >= 1, timeout_s=30, what="an output")
                (output,) = reader.outputs
            status, known = await _get_json(session, f"{api}/v1/hash/{output.record['sha256']}")
            assert status == 200, known
            assert known["nsfw"] == output.record["nsfw"]
            assert known["decision"] == output.record["decision"]
            async with session.post(f"{api}/v1/score", data=SAMPLE.read_bytes()) as response:
                assert response.status == 200
                assert 0.0 <= (await response.json())["nsfw"] <= 1.0
            await broker.__aexit__(None, None, None)
            body = await _readiness_until(session, api, 503, 30)
            assert body["reason"].startswith("broker_unavailable: "), body
    finally:
        await broker.__aexit__(None, None, None)
        if process is not None:
            await terminate(process)
