"""Jetstream -> ``modstream run`` -> two ``modstream verdicts`` replicas, end to end, on tansu and
on Apache Kafka.

Posts of one to four images come from the Jetstream replica with score-ladder images from the
CDN replica. Every post's lookup on each replica equals the worst of its images' tiers in the
result records; so do the lookups by url and by sha256. A reviewer's decision in the real review
console changes its post's verdict on both replicas within a second; kill -9 of one replica
leaves the other answering every lookup; a restarted replica answers as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import locations
import orjson
import pytest
from apache_kafka import ApacheKafka
from children import running
from replicas.cdn import CdnReplica
from replicas.jetstream import JetstreamReplica, images, post
from requirements import unavailable

from modstream.kafka.broker import EmbeddedBroker, free_loopback_port
from modstream.kafka.settings import GroupTimings
from modstream.pipeline.moderate.brandsafety import Risk, worst
from modstream.pipeline.stream.topics import Topics
from modstream.verdicts.config import VerdictSettings
from modstream.verdicts.server import serve_verdicts

from .conftest import Broker
from .reviewing import decide_in_console
from .support import OutputReader, produce, unique_group

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

ALICE = "did:plc:alice4xyzexampleexample"
BOB = "did:plc:bob5xyzexampleexampleex"
LADDER = locations.LADDER
# Policy flag >= 0.8, review from 0.3. Tiers by the reference scores: syn_11_5 0.98 floor,
# syn_12_4 0.95 high, syn_12_0 0.38 medium, syn_13_0 0.19 / syn_11_0 0.23 / syn_11_1 0.27 low,
# syn_14_0 0.02 none. syn_14_0 is in two posts: one image, two URLs, one sha256.
POSTS: dict[tuple[str, str], tuple[str, ...]] = {
    (ALICE, "3khot"): ("syn_11_5.png",),
    (BOB, "3kpair"): ("syn_12_4.png", "syn_14_0.png"),
    (BOB, "3ktrio"): ("syn_12_0.png", "syn_13_0.png", "syn_14_0.png"),
    (ALICE, "3kquad"): ("syn_13_0.png", "syn_11_0.png", "syn_11_1.png", "syn_14_0.png"),
}
TRIO = f"at://{BOB}/app.bsky.feed.post/3ktrio"


def _cid(rkey: str, index: int) -> str:
    return f"bafkrei{rkey}{index}{'q' * 40}"


def _firehose(start_us: int) -> list[dict[str, Any]]:
    t = iter(range(start_us, start_us + 1000, 7))
    return [
        post(did, rkey, next(t), images(*((_cid(rkey, i), "") for i in range(len(files)))))
        for (did, rkey), files in POSTS.items()
    ]


class Replica:
    def __init__(self, broker: Broker, prefix: str, group: str, log_path: Path) -> None:
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        embedded = isinstance(broker, EmbeddedBroker)
        self.command = [
            sys.executable, "-m", "modstream", "verdicts", "--port", str(self.port),
            "--topic-prefix", prefix, "--group-id", group,
            "--bootstrap-servers", broker.bootstrap_servers,
            "--session-timeout", "2" if embedded else "6", "--fetch-max-wait", "0.05",
        ]  # fmt: skip
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]


async def _ready(session: aiohttp.ClientSession, replica: Replica, process: Any) -> None:
    async def ready() -> bool:
        assert process.poll() is None, replica.log()
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{replica.url}/readyz") as response:
                return response.status == 200
        return False

    await _until_async(ready, f"replica {replica.port} ready", 60)


async def _until_async(condition: Any, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _lookup(session: aiohttp.ClientSession, url: str, kind: str, value: str) -> Any:
    async with session.get(f"{url}/v1/verdicts?{kind}={quote(value, safe='')}") as response:
        body = await response.json()
        assert response.status == (200 if body.get("status") == "known" else 404), body
        return body


def _expected(results: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, int]]:
    """(subject kind, value) -> (risk, images), from the result records themselves."""
    by_post: dict[str, list[Risk]] = {}
    expected: dict[tuple[str, str], tuple[str, int]] = {}
    for record in results:
        risk = Risk(record["brand_safety"]["risk"])
        by_post.setdefault(record["meta"]["post"], []).append(risk)
        expected["url", record["url"]] = (risk.value, 1)
        expected["sha256", record["sha256"]] = (risk.value, 1)
    for uri, risks in by_post.items():
        expected["post", uri] = (worst(risks).value, len(risks))
    return expected


async def _answers(
    session: aiohttp.ClientSession, url: str, subjects: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, int]]:
    answers = {}
    for kind, value in subjects:
        body = await _lookup(session, url, kind, value)
        answers[kind, value] = (body.get("risk", "unknown"), body.get("images", 0))
    return answers


async def test_two_replicas_answer_every_post_url_and_hash_as_the_results_say(
    any_broker: Broker, ov_cache_dir: Path, tmp_path: Path
) -> None:
    prefix = f"vd-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    embedded = isinstance(any_broker, EmbeddedBroker)
    group = unique_group("verdicts")
    replicas = [Replica(any_broker, prefix, group, tmp_path / f"verdicts-{n}.log")
                for n in range(2)]  # fmt: skip
    async with JetstreamReplica() as jetstream, CdnReplica() as cdn:
        owners = {rkey: did for did, rkey in POSTS}
        for (_did, rkey), files in POSTS.items():
            for index, name in enumerate(files):
                cdn.put(owners[rkey], _cid(rkey, index), (LADDER / name).read_bytes())
        run = [
            sys.executable, "-m", "modstream", "run", "--source", "jetstream",
            "--jetstream-url", jetstream.url, "--bsky-image-base-url", cdn.base_url,
            "--allow-cidr", "127.0.0.0/8", "--bootstrap-servers", any_broker.bootstrap_servers,
            "--topic-prefix", prefix, "--group-id", unique_group("vd-run"), "--metrics-port", "0",
            "--cache-dir", str(ov_cache_dir), "--session-timeout", "2" if embedded else "6",
            "--fetch-max-wait", "0.02", "--state-dir", str(tmp_path / "state"),
            "--policy", "flag=0.8,review=0.3",
        ]  # fmt: skip
        count = sum(len(files) for files in POSTS.values())
        with (
            running(run, tmp_path / "run.log", cwd=locations.REPO) as scorer,
            running(replicas[0].command, replicas[0].log_path, cwd=locations.REPO) as first,
            running(replicas[1].command, replicas[1].log_path, cwd=locations.REPO) as second,
        ):
            async with asyncio.timeout(60):
                while not jetstream.subscriptions:
                    assert scorer.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                    await asyncio.sleep(0.05)
            await jetstream.publish(*_firehose(1_764_000_000_000_000))
            async with OutputReader(any_broker.bootstrap_servers, topics.outputs()) as reader:
                await reader.wait_until(lambda o: len(o) >= count, timeout_s=90,
                                        what=f"{count} results")  # fmt: skip
                await reader.read_to_end()
            results = [o.record for o in reader.outputs]
            assert all("error" not in r for r in results), results
            expected = _expected(results)
            subjects = sorted(expected)
            post_risks = {risk for (kind, _), (risk, _n) in expected.items() if kind == "post"}
            assert post_risks == {"floor", "high", "medium", "low"}, expected

            async with aiohttp.ClientSession() as session:
                for replica, process in zip(replicas, (first, second), strict=True):
                    await _ready(session, replica, process)

                async def both_current() -> bool:
                    return all([await _answers(session, r.url, subjects) == expected
                                for r in replicas])  # fmt: skip

                await _until_async(both_current, "both replicas answering the results", 30)

                # A reviewer's nsfw on the trio's medium image: the post becomes high.
                trio = await _lookup(session, replicas[0].url, "post", TRIO)
                assert (trio["risk"], trio["decided_by"]) == ("medium", "model")
                await decide_in_console(any_broker.kafka, prefix, {f"{TRIO}#0": "nsfw"},
                                        embedded=embedded)  # fmt: skip
                decided = time.monotonic()

                async def reviewed() -> bool:
                    answers = [await _lookup(session, r.url, "post", TRIO) for r in replicas]
                    return all(a["risk"] == "high" and a["decided_by"] == "reviewer"
                               for a in answers)  # fmt: skip

                await _until_async(reviewed, "the reviewer's decision on both replicas", 10)
                took = time.monotonic() - decided
                assert took <= 1.0, f"the decision took {took:.2f} s to be visible"
                expected["post", TRIO] = ("high", 3)
                medium = next(r for r in results if r["meta"]["post"] == TRIO
                              and r["brand_safety"]["risk"] == "medium")  # fmt: skip
                expected["url", medium["url"]] = expected["sha256", medium["sha256"]] = ("high", 1)
                before = await _answers(session, replicas[1].url, subjects)
                assert before == expected

                # kill -9 of the first: the second answers every lookup meanwhile.
                first.send_signal(signal.SIGKILL)
                first.wait(10)
                for _round in range(3):
                    assert await _answers(session, replicas[1].url, subjects) == expected
                # Restarted, it reads the verdict topic and answers as before.
                with running(
                    replicas[0].command, replicas[0].log_path, cwd=locations.REPO
                ) as again:
                    await _ready(session, replicas[0], again)
                    assert await _answers(session, replicas[0].url, subjects) == expected


def _result(n: int, *, published_at: float) -> bytes:
    """A result record as the scorer publishes it (the fields the verdicts read)."""
    return orjson.dumps({
        "id": f"o-{n}", "url": f"https://cdn.test/o-{n}.jpg", "source": "webhook",
        "observed_at": published_at - 0.1, "published_at": published_at,
        "meta": {"post": f"https://host.test/posts/{n}"}, "nsfw": 0.91, "decision": "flagged",
        "policy": "balanced", "sha256": f"{n:064x}",
        "brand_safety": {"taxonomy": "iab-content-3.1", "risk": "high", "categories": []},
    })  # fmt: skip


@pytest.mark.timeout(240)
async def test_the_broker_down_for_30_s_lookups_answer_from_memory_and_readyz_says_stale(
    kafka_jars: str | None, tmp_path: Path
) -> None:
    """kill -9 of the broker (Apache Kafka, its log kept) for 30 s: every lookup still answers
    as before; /readyz turns 503 'stale' after --stale-after (3 s here), and 200 again once the
    broker is back, when a new result becomes visible too. A second replica stopped while the
    broker is away stops in seconds, without an error."""
    if kafka_jars is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    prefix = f"vo-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    async with ApacheKafka(tmp_path / "kafka", kafka_jars) as kafka:
        settings = VerdictSettings(
            kafka=kafka.kafka, result_topics=(topics.flagged,), reviewed_topic=topics.reviewed,
            verdict_topic=topics.verdicts, group_id=unique_group("vo"), stale_after_s=3.0,
            timings=GroupTimings(session_timeout_s=6.0, fetch_max_wait_s=0.05),
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        stop, bound = asyncio.Event(), loop.create_future()
        server = asyncio.create_task(
            serve_verdicts(settings, host="127.0.0.1", port=0, stop=stop, bound=bound)
        )
        stop_other, other_bound = asyncio.Event(), loop.create_future()
        other = asyncio.create_task(
            serve_verdicts(settings, host="127.0.0.1", port=0, stop=stop_other, bound=other_bound)
        )
        try:
            url = f"http://127.0.0.1:{await asyncio.wait_for(bound, 60)}"
            await asyncio.wait_for(other_bound, 60)
            async with aiohttp.ClientSession() as session:

                async def readiness() -> tuple[int, str]:
                    async with session.get(f"{url}/readyz") as response:
                        return response.status, (await response.json()).get("reason", "")

                async def known(n: int) -> bool:
                    body = await _lookup(session, url, "post", f"https://host.test/posts/{n}")
                    return bool(body["status"] == "known")

                await _until_async(lambda: _is(readiness(), 200), "the replica ready", 60)
                results = [_result(n, published_at=time.time()) for n in range(20)]
                await produce(kafka.bootstrap_servers, topics.flagged, results, partitions=4)
                await _until_async(lambda: known(19), "the results visible", 30)
                before = [await _lookup(session, url, "post", f"https://host.test/posts/{n}")
                          for n in range(20)]  # fmt: skip

                await kafka.kill()
                killed = time.monotonic()
                stale_after: float | None = None
                lookups = 0
                while time.monotonic() - killed < 30:
                    n = lookups % 20
                    body = await _lookup(session, url, "post", f"https://host.test/posts/{n}")
                    assert body == before[n]
                    lookups += 1
                    status, reason = await readiness()
                    if status == 503 and stale_after is None:
                        assert reason.startswith("stale"), reason
                        stale_after = time.monotonic() - killed
                    await asyncio.sleep(0.1)
                assert stale_after is not None and 2.0 <= stale_after <= 10.0, stale_after
                assert lookups >= 100
                stop_other.set()
                stopping = time.monotonic()
                await asyncio.wait_for(other, 15)  # raises what stopped it, if anything did
                assert time.monotonic() - stopping < 10

                await kafka.start()
                await _until_async(lambda: _is(readiness(), 200), "ready once the broker is back",
                                   60)  # fmt: skip
                late = [_result(20, published_at=time.time())]
                await produce(kafka.bootstrap_servers, topics.flagged, late, partitions=4)
                await _until_async(lambda: known(20), "a result after the outage visible", 30)
        finally:
            stop.set()
            stop_other.set()
            await asyncio.wait_for(asyncio.gather(server, other), 30)


async def _is(status: Any, expected: int) -> bool:
    code, _reason = await status
    return bool(code == expected)
