"""Jetstream -> ``modstream run`` -> ``modstream labeler`` -> a real atproto client, end to end.

Posts come from the Jetstream replica with images from the CDN replica (score-ladder images:
one flagged post, one with two flagged images, one in the review band, one safe). The labels
arrive through the ``atproto`` package's labels firehose client; each signature is checked with
its crypto module against the did:key ``keygen`` printed. Reviewers decide in the real review
console (queueing the review band and the flagged posts), which publishes to
``PREFIX.reviewed``. A restart of the labeler serves the same log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import libipld
import locations
import pytest
from atproto import AsyncFirehoseSubscribeLabelsClient, parse_subscribe_labels_message
from atproto_crypto.verify import verify_signature
from children import running
from polling import until
from replicas.cdn import CdnReplica
from replicas.jetstream import JetstreamReplica, images, post

from modstream.kafka.broker import EmbeddedBroker, free_loopback_port
from modstream.pipeline.stream.topics import Topics

from .reviewing import decide_in_console
from .support import OutputReader, unique_group

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

ALICE = "did:plc:alice4xyzexampleexample"
BOB = "did:plc:bob5xyzexampleexampleex"
LABELER = "did:plc:modstreamlabelertest0"
LADDER = locations.LADDER
# Policy flag >= 0.8, review from 0.3: syn_11_5 0.98, syn_12_4 0.95, syn_14_4 0.95 are flagged,
# syn_12_0 0.38 is reviewed, syn_14_0 0.02 is safe.
IMAGES = {"hot": "syn_11_5.png", "pair-a": "syn_12_4.png", "pair-b": "syn_14_4.png",
          "middle": "syn_12_0.png", "calm": "syn_14_0.png"}  # fmt: skip
POSTS = ((ALICE, "3khot"), (BOB, "3kpair"), (BOB, "3kmid"), (ALICE, "3kcalm"))
HOT, PAIR, MIDDLE, CALM = (f"at://{did}/app.bsky.feed.post/{rkey}" for did, rkey in POSTS)


@dataclass(frozen=True, slots=True)
class Received:
    seq: int
    fields: dict[str, Any]  # the label as the client decoded it, sig included


def _cid(name: str) -> str:
    return f"bafkrei{name.replace('-', '')}{'q' * 40}"


def _firehose(start_us: int) -> list[dict[str, Any]]:
    t = iter(range(start_us, start_us + 1000, 7))
    return [
        post(ALICE, "3khot", next(t), images((_cid("hot"), ""))),
        post(BOB, "3kpair", next(t), images((_cid("pair-a"), ""), (_cid("pair-b"), ""))),
        post(BOB, "3kmid", next(t), images((_cid("middle"), ""))),
        post(ALICE, "3kcalm", next(t), images((_cid("calm"), ""))),
    ]


async def _ready(url: str, process: Any, log_path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _attempt in range(600):
            assert process.poll() is None, await asyncio.to_thread(_tail, log_path)
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/xrpc/_health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("the labeler never answered")


@contextlib.asynccontextmanager
async def _subscribed(port: int, received: list[Received]) -> AsyncIterator[None]:
    """The atproto labels client from cursor 0, appending what it receives."""
    client = AsyncFirehoseSubscribeLabelsClient(
        params={"cursor": 0}, base_uri=f"ws://127.0.0.1:{port}/xrpc"
    )

    async def on_message(message: Any) -> None:
        labels = parse_subscribe_labels_message(message)
        for label in getattr(labels, "labels", None) or []:
            received.append(Received(labels.seq, label.model_dump(exclude_none=True,
                                                                  by_alias=True)))  # fmt: skip

    task = asyncio.create_task(client.start(on_message))
    try:
        yield
    finally:
        await client.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


def _tail(path: Path) -> str:
    return path.read_text()[-3000:]


async def _until(condition: Any, what: str, timeout_s: float = 60) -> None:
    await until(condition, what, timeout_s=timeout_s)


def _verified(did_key: str, label: dict[str, Any]) -> bool:
    """The client's label re-encoded without sig, as any subscriber checks it."""
    unsigned = {key: value for key, value in label.items()
                if key not in ("sig", "py_type", "$type")}  # fmt: skip
    return verify_signature(did_key, bytes(libipld.encode_dag_cbor(unsigned)), label["sig"])


def _summary(received: list[Received]) -> list[tuple[int, str, str, bool]]:
    return [(r.seq, r.fields["uri"], r.fields["val"], bool(r.fields.get("neg"))) for r in received]


async def test_flagged_posts_are_labelled_reviews_negate_and_a_restart_serves_the_same_log(
    broker: EmbeddedBroker, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """Every flagged post gets one porn label, signed for the printed did:key, carrying the
    post record's cid; the review-band and safe posts get none until a reviewer's nsfw; a
    reviewer's safe on a labelled post is a negation; after a restart cursor=0 replays the same
    labels with the same seqs and signatures, and queryLabels finds them."""
    keygen = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "modstream", "labeler", "keygen"],
        capture_output=True, text=True, check=True, cwd=locations.REPO,
    )  # fmt: skip
    key_line, did_line = keygen.stdout.splitlines()
    env = {**os.environ, "MODSTREAM_LABELER_KEY": key_line.split("=", 1)[1]}
    did_key = did_line.removeprefix("did:key: ")
    prefix = f"lb-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    port = free_loopback_port()
    labeler = [
        sys.executable, "-m", "modstream", "labeler", "--labeler-did", LABELER,
        "--port", str(port), "--topic-prefix", prefix, "--group-id", unique_group("labeler"),
        "--bootstrap-servers", broker.bootstrap_servers,
    ]  # fmt: skip
    url, log_path = f"http://127.0.0.1:{port}", tmp_path / "labeler.log"
    async with JetstreamReplica() as jetstream, CdnReplica() as cdn:
        for name, image in IMAGES.items():
            owner = ALICE if name in ("hot", "calm") else BOB
            cdn.put(owner, _cid(name), (LADDER / image).read_bytes())
        run = [
            sys.executable, "-m", "modstream", "run", "--source", "jetstream",
            "--jetstream-url", jetstream.url, "--bsky-image-base-url", cdn.base_url,
            "--allow-cidr", "127.0.0.0/8", "--bootstrap-servers", broker.bootstrap_servers,
            "--topic-prefix", prefix, "--group-id", unique_group("lb"), "--metrics-port", "0",
            "--cache-dir", str(ov_cache_dir), "--session-timeout", "2",
            "--fetch-max-wait", "0.02", "--state-dir", str(tmp_path / "state"),
            "--policy", "flag=0.8,review=0.3",
        ]  # fmt: skip
        received: list[Received] = []
        with running(run, tmp_path / "run.log", env=env, cwd=locations.REPO) as scorer:
            async with asyncio.timeout(60):
                while not jetstream.subscriptions:
                    assert scorer.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                    await asyncio.sleep(0.05)
            await jetstream.publish(*_firehose(1_764_000_000_000_000))
            reader = OutputReader(broker.bootstrap_servers, topics.outputs())
            async with reader:
                await reader.wait_until(lambda o: len(o) >= 5, timeout_s=90, what="5 results")
                await reader.read_to_end()
            results = {o.record["id"]: o.record for o in reader.outputs}
        assert {r["decision"] for r in results.values()} == {"flagged", "review", "safe"}

        with running(labeler, log_path, env=env, cwd=locations.REPO) as process:
            await _ready(url, process, log_path)
            async with _subscribed(port, received):
                await _until(lambda: len(received) >= 2, "the two flagged posts' labels")
                await asyncio.sleep(1.0)  # nothing more may come: the pair is one post
                automatic = _summary(received)
                assert {(uri, val, neg) for _seq, uri, val, neg in automatic} == {
                    (HOT, "porn", False), (PAIR, "porn", False)}  # fmt: skip
                assert [seq for seq, *_ in automatic] == [1, 2]
                # The review console, queueing the review band and the flagged posts.
                await decide_in_console(
                    broker.kafka, prefix, {f"{MIDDLE}#0": "nsfw", f"{HOT}#0": "safe"}
                )
                await _until(lambda: len(received) >= 4, "the reviewers' labels")
            async with aiohttp.ClientSession() as session:
                query = {"uriPatterns": f"at://{ALICE}/*"}
                async with session.get(f"{url}/xrpc/com.atproto.label.queryLabels",
                                       params=query) as response:  # fmt: skip
                    assert response.status == 200
                    queried = (await response.json())["labels"]
        first_run = _summary(received)
        by_post = {(uri, neg): val for _seq, uri, val, neg in first_run}
        assert by_post == {(HOT, False): "porn", (PAIR, False): "porn", (MIDDLE, False): "porn",
                           (HOT, True): "porn"}  # fmt: skip
        assert [seq for seq, *_ in first_run] == [1, 2, 3, 4]
        for item in received:
            assert item.fields["src"] == LABELER and item.fields["ver"] == 1
            assert _verified(did_key, item.fields), item
        hot = next(r.fields for r in received if r.fields["uri"] == HOT)
        assert hot["cid"] == "bafyreipost3khot"  # the post record's version, from Jetstream
        assert {label["uri"] for label in queried} == {HOT}
        assert sorted(label["neg"] for label in queried) == [False, True]

        again: list[Received] = []
        with running(labeler, log_path, env=env, cwd=locations.REPO) as process:
            await _ready(url, process, log_path)
            async with _subscribed(port, again):
                await _until(lambda: len(again) >= 4, "the replayed log")
                await asyncio.sleep(0.5)
        assert _summary(again) == first_run
        assert [r.fields["sig"] for r in again] == [r.fields["sig"] for r in received]
