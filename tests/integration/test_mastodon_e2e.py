"""``modstream run --role connector --source mastodon`` against a replica and a real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import mediagen
import pytest
from children import reap, terminate
from replicas.mastodon import MastodonReplica, attachment, status

from modstream.connectors.checkpoints import DirectoryCheckpoints
from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker
from modstream.pipeline.stream.topics import Topics

from .support import OutputReader

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]
TOKEN = "replica-token"


def _command(servers: str, prefix: str, url: str, state: Path) -> list[str]:
    return [
        sys.executable, "-m", "modstream", "run", "--role", "connector", "--source", "mastodon",
        "--mastodon-url", url, "--bootstrap-servers", servers, "--topic-prefix", prefix,
        "--metrics-port", "0", "--state-dir", str(state),
    ]  # fmt: skip


def _spawn(command: list[str], log_path: Path, token: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "MASTODON_ACCESS_TOKEN": token}
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=environment)


async def _post_slowly(replica: MastodonReplica, ids: range) -> None:
    for status_id in ids:
        await replica.publish(_photo(status_id))
        await asyncio.sleep(0.05)


def _photo(status_id: int) -> dict[str, object]:
    url = f"http://127.0.0.1:9/media/{status_id}.jpg"
    return status(
        str(status_id), attachment(f"m{status_id}", url=url), sensitive=status_id % 2 == 0
    )


async def test_a_killed_connector_backfills_what_it_missed_and_loses_nothing(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """kill -9 mid-stream; statuses posted while it is down; a restart pages the timeline from
    the saved status: every status is on the topic, repeats only after the saved position."""
    prefix = f"mast-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    checkpoints = DirectoryCheckpoints(state)
    key = "mastodon-127.0.0.1-public"
    async with MastodonReplica(heartbeat_s=0.5) as replica:
        command = _command(broker.bootstrap_servers, prefix, replica.url, state)
        first = _spawn(command, tmp_path / "first.log", TOKEN)
        try:
            await asyncio.wait_for(replica.wait_for_streams(1), 60)
            posting = asyncio.create_task(_post_slowly(replica, range(1000, 1040)))
            async with asyncio.timeout(30):
                while int(checkpoints.load(key) or 0) < 1010:
                    assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
                    await asyncio.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait)
        saved = int(checkpoints.load(key) or 0)
        await posting  # the rest arrive while nobody listens
        await replica.publish(*(_photo(1040 + n) for n in range(20)))
        second = _spawn(command, tmp_path / "second.log", TOKEN)
        try:
            await asyncio.wait_for(replica.wait_for_streams(2), 60)
            await replica.publish(_photo(1060))
            async with OutputReader(
                broker.bootstrap_servers, [Topics.with_prefix(prefix).incoming]
            ) as reader:
                await reader.wait_until(
                    lambda outputs: {o.record["id"] for o in outputs} >= {_id(1060)},
                    timeout_s=60,
                    what="the status after the restart",
                )
                await reader.read_to_end()
                records = [o.record for o in reader.outputs]
            assert await terminate(second) == 0
        finally:
            reap(second)
    counts = Counter(str(record["id"]) for record in records)
    assert set(counts) == {_id(1000 + n) for n in range(61)}
    repeated = {identifier for identifier, count in counts.items() if count > 1}
    assert all(int(identifier.split(":")[2]) > saved for identifier in repeated), (saved, repeated)
    assert saved < 1039, "the kill came after the last status: nothing was missed"
    assert next(r.query["min_id"] for r in replica.timeline_requests()) == str(saved)
    sensitive = {str(r["id"]): r["meta"]["sensitive"] for r in records}  # type: ignore[index]
    assert sensitive[_id(1002)] is True and sensitive[_id(1003)] is False


def _id(status_id: int) -> str:
    return f"mastodon:127.0.0.1:{status_id}:m{status_id}"


async def test_a_refused_token_stops_the_connector_in_one_line(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """401 from the stream: exit 1 within seconds, one line naming MASTODON_ACCESS_TOKEN."""
    async with MastodonReplica() as replica:
        command = _command(broker.bootstrap_servers, "mast-401", replica.url, tmp_path)
        started = time.monotonic()
        process = _spawn(command, tmp_path / "run.log", "not-the-token")
        code = await asyncio.to_thread(process.wait, 60)
    stderr = (tmp_path / "run.log").read_text()
    assert code == 1, stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("modstream run: source_unauthorized: mastodon: the stream at")
    assert "MASTODON_ACCESS_TOKEN" in line and "Traceback" not in stderr
    assert time.monotonic() - started < 30


async def test_gifv_and_video_attachments_are_scored_by_their_frames(
    broker: EmbeddedBroker, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """A status with a gifv (an MP4 animation) and a video: both become events of their MP4,
    and the scorer's results carry frames, the explicit stretch of each deciding."""
    prefix = f"mastv-{uuid.uuid4().hex[:8]}"
    media = {"gifv.mp4": mediagen.video("mp4", seconds=2.0, hot_from_s=1.0, hot_to_s=1.3),
             "video.mp4": mediagen.video("mp4")}  # fmt: skip
    async with MastodonReplica(heartbeat_s=0.5) as replica, ImageServer(media) as server:
        base = server.served.base_url
        command = [
            *_command(broker.bootstrap_servers, prefix, replica.url, tmp_path / "state"),
            "--allow-cidr", "127.0.0.0/8", "--cache-dir", str(ov_cache_dir),
            "--session-timeout", "2", "--fetch-max-wait", "0.02",
        ]  # fmt: skip
        command[command.index("connector")] = "all"
        process = _spawn(command, tmp_path / "run.log", TOKEN)
        try:
            await asyncio.wait_for(replica.wait_for_streams(1), 60)
            await replica.publish(status(
                "2000",
                attachment("g", "gifv", url=f"{base}/img/gifv.mp4", preview_url=f"{base}/x.png"),
                attachment("v", "video", url=f"{base}/img/video.mp4", preview_url=f"{base}/x.png"),
            ))  # fmt: skip
            topics = Topics.with_prefix(prefix)
            async with OutputReader(broker.bootstrap_servers, topics.outputs()) as reader:
                await reader.wait_until(lambda outputs: len(outputs) >= 2, timeout_s=90,
                                        what="the two attachments' results")  # fmt: skip
                results = {o.record["meta"]["type"]: o.record for o in reader.outputs}  # type: ignore[index]
            assert await terminate(process) == 0
        finally:
            reap(process)
    assert set(results) == {"gifv", "video"}
    assert 1.0 <= results["gifv"]["frames"]["worst_offset_s"] < 1.3  # type: ignore[index]
    assert 2.0 <= results["video"]["frames"]["worst_offset_s"] < 2.5  # type: ignore[index]
    assert {r["decision"] for r in results.values()} == {"flagged"}
