"""``modstream run --source jetstream`` against Jetstream and CDN replicas, end to end."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from children import reap, terminate
from replicas.cdn import CdnReplica
from replicas.jetstream import (
    JetstreamReplica,
    account,
    delete,
    external,
    images,
    like,
    post,
    record_with_media,
)

from modstream.demo.imageserver import sample_images
from modstream.kafka.broker import EmbeddedBroker
from modstream.pipeline.stream.topics import Topics

from .support import OutputReader, unique_group

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

ALICE = "did:plc:alice4xyzexampleexample"
BOB = "did:web:bob.example.com"


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)


def _cids(count: int) -> list[str]:
    return [f"bafkrei{index:02d}{'q' * 50}" for index in range(count)]


def _firehose(cids: list[str], start_us: int) -> list[dict[str, Any]]:
    """Posts with 2, 1 (quote post) and 4 images, labelled and not, among frames without any."""
    t = iter(range(start_us, start_us + 1000, 7))
    quoted = f"at://{BOB}/app.bsky.feed.post/3kquoted"
    return [
        post(ALICE, "3kone", next(t), images((cids[0], "beach"), (cids[1], "")),
             self_labels=("porn",)),
        like(BOB, "3klike", next(t), f"at://{ALICE}/app.bsky.feed.post/3kone"),
        post(BOB, "3ktext", next(t)),
        post(BOB, "3kquote", next(t), record_with_media(images((cids[2], "quoting")), quoted)),
        delete(ALICE, "3kold", next(t)),
        account(BOB, next(t)),
        post(BOB, "3klink", next(t), external("https://news.example/", cids[3])),
        post(ALICE, "3kfour", next(t), images(*((cid, f"n{i}") for i, cid in enumerate(cids[4:8]))),
             self_labels=("sexual", "nudity")),
    ]  # fmt: skip


async def test_run_scores_every_image_of_every_image_post_and_resumes_after_a_drop(
    broker: EmbeddedBroker, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """Every image of every image-bearing post (images and recordWithMedia) gets one result;
    a connection cut mid-stream resumes with a cursor; self-labels reach the result records."""
    bodies = [body for name, body in sample_images().items() if name.endswith(".jpg")]
    cids = _cids(8)
    prefix = f"js-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    async with JetstreamReplica() as jetstream, CdnReplica() as cdn:
        for index, cid in enumerate(cids):
            cdn.put(ALICE if index in (0, 1, 4, 5, 6, 7) else BOB, cid, bodies[index % len(bodies)])
        command = [
            sys.executable, "-m", "modstream", "run", "--source", "jetstream",
            "--jetstream-url", jetstream.url, "--bsky-image-base-url", cdn.base_url,
            "--allow-cidr", "127.0.0.0/8", "--bootstrap-servers", broker.bootstrap_servers,
            "--topic-prefix", prefix, "--group-id", unique_group("js"), "--metrics-port", "0",
            "--cache-dir", str(ov_cache_dir), "--session-timeout", "2",
            "--fetch-max-wait", "0.02", "--state-dir", str(tmp_path / "state"),
        ]  # fmt: skip
        log_path = tmp_path / "run.log"
        process = _spawn(command, log_path)
        try:
            async with asyncio.timeout(60):
                while not jetstream.subscriptions:  # starts live: publish once subscribed
                    assert process.poll() is None, log_path.read_text()[-2000:]
                    await asyncio.sleep(0.05)
            frames = _firehose(cids, 1_763_800_000_000_000)
            jetstream.drop_after(3)  # mid-stream, after the like and the text post
            await jetstream.publish(*frames)
            await jetstream.publish_raw('{"did": ', time_us=frames[-1]["time_us"] + 1)
            reader = OutputReader(broker.bootstrap_servers, topics.outputs())
            for _attempt in range(100):
                try:
                    await reader.__aenter__()
                    break
                except AssertionError:  # topics not created yet
                    await asyncio.sleep(0.1)
            try:
                await reader.wait_until(lambda o: len(o) >= 7, timeout_s=90, what="7 results")
                await reader.read_to_end()
                outputs = list(reader.outputs)
            finally:
                await reader.__aexit__(None, None, None)
            assert await terminate(process) == 0, log_path.read_text()[-2000:]
        finally:
            reap(process)
    by_id = {str(o.record["id"]): o for o in outputs}
    assert len(outputs) == len(by_id) == 7, [o.record for o in outputs]
    posts = ((ALICE, "3kone"), (BOB, "3kquote"), (ALICE, "3kfour"))
    one, quote, four = (f"at://{did}/app.bsky.feed.post/{rkey}" for did, rkey in posts)
    assert set(by_id) == {f"{one}#0", f"{one}#1", f"{quote}#0", *(f"{four}#{i}" for i in range(4))}
    for output in outputs:
        assert output.topic in (topics.flagged, topics.safe), output.record
        assert isinstance(output.record["nsfw"], float)
    meta = {key: o.record["meta"] for key, o in by_id.items()}
    assert meta[f"{one}#1"]["self_labels"] == ["porn"]  # type: ignore[index]
    assert meta[f"{four}#3"]["self_labels"] == ["sexual", "nudity"]  # type: ignore[index]
    assert meta[f"{quote}#0"]["embed"] == "images" and meta[f"{quote}#0"]["alt"] == "quoting"  # type: ignore[index]
    first, second, *_ = jetstream.subscriptions
    assert first.cursor is None  # no saved position: live
    assert second.cursor is not None and second.cursor <= frames[2]["time_us"]
    assert len(cdn.requests) == 7  # the link card's thumbnail is not scored by default

    # modstream eval --results: the authors' self-labels, per value, beside the unlabelled image.
    results = tmp_path / "results.jsonl"
    results.write_bytes(b"".join(orjson.dumps(o.record) + b"\n" for o in outputs))
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream", "eval", "--results", str(results), "--json"],
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    weak = orjson.loads(done.stdout.splitlines()[-1])["weak_labels"]
    groups = weak["groups"]
    assert {name: group["n"] for name, group in groups.items()} == {
        "jetstream: porn": 2, "jetstream: sexual": 4, "jetstream: nudity": 4,
        "jetstream: unlabelled": 1,
    }  # fmt: skip
    for name, group in groups.items():
        members = [o.record["nsfw"] for o in outputs if name in _groups_of(o.record)]
        assert group["mean_nsfw"] == pytest.approx(sum(members) / len(members), abs=1e-6)
        assert sum(group["decisions"].values()) == group["n"]
    assert "auc_vs_unlabelled" in groups["jetstream: porn"]
    assert "unlabelled, not safe" in weak["note"]
    assert b"jetstream: porn" in done.stdout  # the table a person reads


def _groups_of(record: dict[str, Any]) -> list[str]:
    labels = record["meta"]["self_labels"] or ["unlabelled"]
    return [f"jetstream: {label}" for label in labels]
