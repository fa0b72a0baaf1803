"""The review console over a real loopback server and the embedded broker: the queue's order and
leases, decisions on the reviewed topic, typed errors, images through the guarded fetcher, and
no pending item lost when the console restarts."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from children import reap, terminate
from polling import until
from sklearn.metrics import roc_auc_score

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import (
    EmbeddedBroker,
    TopicSpec,
    ensure_topics,
    free_loopback_port,
)
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.review.app import build_app
from modstream.review.reviewers import Reviewers
from modstream.review.service import ReviewService, ReviewSettings
from modstream.web.site import bound_site

from .conftest import Broker
from .support import OutputReader, default_timings, embedded_timings, produce, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789ab"}
REVIEWERS = Reviewers({token: name for name, token in TOKENS.items()})
PARTITIONS = 2


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@dataclass
class Console:
    url: str
    service: ReviewService
    review_topic: str
    reviewed_topic: str


@dataclass(frozen=True)
class Topics:
    review: str
    reviewed: str
    group: str


def new_topics() -> Topics:
    tag = uuid.uuid4().hex[:8]
    return Topics(f"rv-{tag}.review", f"rv-{tag}.reviewed", unique_group("review"))


@contextlib.asynccontextmanager
async def console(broker: Broker, topics: Topics, **overrides: Any) -> AsyncIterator[Console]:
    poll = {"max_poll_interval_s": overrides.pop("max_poll_interval_s")} if (
        "max_poll_interval_s" in overrides) else {}  # fmt: skip
    settings = ReviewSettings(
        kafka=broker.kafka, topics=(topics.review,), reviewed_topic=topics.reviewed,
        group_id=topics.group, lease_s=60,
        timings=embedded_timings(default_timings(ReviewSettings), **poll),
        fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=5),
        **overrides,
    )  # fmt: skip
    stop = asyncio.Event()
    async with ReviewService(settings) as service:
        app = build_app(service, REVIEWERS)
        async with bound_site(app, "127.0.0.1", 0, port_flag="--port") as port:
            task = asyncio.create_task(service.run(stop))
            try:
                yield Console(f"http://127.0.0.1:{port}", service, topics.review, topics.reviewed)
            finally:
                stop.set()
                await asyncio.wait_for(task, 20)


def record(n: int, url: str, observed_at: float, **extra: Any) -> bytes:
    return orjson.dumps({
        "id": f"item-{n}", "url": url, "nsfw": round(0.3 + n / 100, 3), "decision": "review",
        "policy": "balanced", "source": "jetstream", "observed_at": observed_at,
        "meta": {"post": f"at://did:plc:x/app.bsky.feed.post/{n}", "self_labels": ["nudity"]},
        **extra,
    })  # fmt: skip


async def produce_review(
    broker: Broker, topics: Topics, values: list[bytes], *, partitions: int
) -> None:
    """Create the review topic (Apache Kafka does not create topics on first use, as in
    production), then produce to it."""
    await ensure_topics(broker.kafka, [TopicSpec(topics.review, partitions)])
    await produce(broker.bootstrap_servers, topics.review, values, partitions=partitions)


async def until_pending(service: ReviewService, count: int, timeout_s: float = 30) -> None:
    await until(lambda: len(service.queue) >= count, f"{count} pending items", timeout_s=timeout_s)


async def get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with session.get(url, **kwargs) as response:
        return response.status, await response.json()


async def post(session: aiohttp.ClientSession, url: str, body: Any, who: str) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with session.post(f"{url}/api/v1/decisions", data=data, headers=auth(who)) as response:
        return response.status, await response.json()


async def test_queue_is_oldest_first_and_leases_keep_reviewers_apart(
    broker: EmbeddedBroker, image_server: ImageServer
) -> None:
    """Items come oldest first by observed_at, whatever partition; an item shown to one reviewer is
    not shown to another while leased, and comes back to the same reviewer."""
    assert image_server.served is not None
    url = image_server.served.image_urls()[0]
    topics = new_topics()
    await ensure_topics(broker.kafka, [TopicSpec(topics.review, PARTITIONS)])
    now = time.time()
    # Produced out of order over two partitions; observed_at says which is oldest.
    ages = {0: 50, 1: 10, 2: 40, 3: 20, 4: 30}
    values = [record(n, url, now - age) for n, age in ages.items()]
    await produce_review(broker, topics, values, partitions=PARTITIONS)
    async with console(broker, topics) as c, aiohttp.ClientSession() as session:
        await until_pending(c.service, 5)
        status, alice = await get(session, f"{c.url}/api/v1/queue?limit=3", headers=auth("alice"))
        assert status == 200
        assert [item["id"] for item in alice["items"]] == ["item-0", "item-2", "item-4"]
        first = alice["items"][0]
        assert first["nsfw"] == 0.3 and first["decision"] == "review"
        assert first["meta"]["self_labels"] == ["nudity"] and first["topic"] == topics.review
        _, bob = await get(session, f"{c.url}/api/v1/queue?limit=5", headers=auth("bob"))
        assert [item["id"] for item in bob["items"]] == ["item-3", "item-1"]  # not alice's
        _, again = await get(session, f"{c.url}/api/v1/queue?limit=5", headers=auth("alice"))
        assert [item["id"] for item in again["items"]] == ["item-0", "item-2", "item-4"]
        assert again["stats"]["pending"] == 5 and again["stats"]["leased"] == 5
        assert again["stats"]["consumed"] == 5


async def test_a_full_queue_keeps_its_group_membership_and_leases_past_max_poll_interval(
    any_broker: Broker, image_server: ImageServer
) -> None:
    """A console holding its maximum of pending items for longer than max_poll_interval stays in
    its group: nothing is revoked or read again, the other reviewer is not handed the leased
    items, and a decision on an item leased before the wait is accepted after it. On both
    brokers."""
    broker = any_broker
    assert image_server.served is not None
    url = image_server.served.image_urls()[0]
    topics = new_topics()
    now = time.time()
    values = [record(n, url, now - 100 + n) for n in range(14)]
    await produce_review(broker, topics, values, partitions=PARTITIONS)
    interval_s = 2.0
    async with (
        console(broker, topics, max_pending=8, max_poll_interval_s=interval_s) as c,
        aiohttp.ClientSession() as session,
    ):
        await until_pending(c.service, 8)
        _, alice = await get(session, f"{c.url}/api/v1/queue?limit=5", headers=auth("alice"))
        leased = [item["id"] for item in alice["items"]]
        assert len(leased) == 5
        before = c.service.consume_statistics()
        assert before.paused, "a full queue pauses its partitions"
        # The point of the test is time passing with the queue full: three poll intervals.
        await asyncio.sleep(interval_s * 3)
        after = c.service.consume_statistics()
        assert after.rebalances == before.rebalances, "the console left and rejoined its group"
        assert after.polls > before.polls, "a paused console still polls"
        assert c.service.consumed == 8, "records were read again after a rejoin"
        assert len(c.service.queue) == 8
        _, bob = await get(session, f"{c.url}/api/v1/queue?limit=8", headers=auth("bob"))
        assert not {item["id"] for item in bob["items"]} & set(leased), "alice's leases were lost"
        status, body = await post(session, c.url, {"id": leased[0], "label": "safe"}, "alice")
        assert status == 202, body


async def test_a_decision_lands_on_the_reviewed_topic_once_and_errors_are_typed(
    any_broker: Broker, image_server: ImageServer
) -> None:
    """A decision is the original record plus label, reviewer, decided_at and note, keyed by id on
    the reviewed topic, answered with the counters as they are now; a second decision is 409, an
    unknown id 404, a bad body 400, a GET of the decisions route a JSON 405. On both brokers."""
    broker = any_broker
    assert image_server.served is not None
    url = image_server.served.image_urls()[1]
    topics = new_topics()
    await produce_review(broker, topics, [record(7, url, time.time())],
                  partitions=1)  # fmt: skip
    async with console(broker, topics) as c, aiohttp.ClientSession() as session:
        await until_pending(c.service, 1)
        status, body = await post(session, c.url, {"id": "item-7", "label": "nsfw",
                                                   "note": "clearly"}, "bob")  # fmt: skip
        assert status == 202, body
        assert body["decision"]["reviewer"] == "bob" and body["decision"]["label"] == "nsfw"
        assert (body["stats"]["pending"], body["stats"]["decided_today_by_you"]) == (0, 1)
        async with OutputReader(broker.bootstrap_servers, [topics.reviewed]) as reader:
            await reader.wait_until(lambda o: len(o) >= 1, timeout_s=20, what="the decision")
            (stored,) = reader.outputs
        decided = stored.record
        assert decided["id"] == "item-7" and decided["url"] == url and decided["nsfw"] == 0.37
        assert (decided["label"], decided["reviewer"], decided["note"]) == (
            "nsfw",
            "bob",
            "clearly",
        )
        assert abs(decided["decided_at"] - time.time()) < 60 and stored.key == b"item-7"
        again = await post(session, c.url, {"id": "item-7", "label": "safe"}, "alice")
        assert again[0] == 409 and again[1]["error"]["kind"] == "already_decided"
        unknown = await post(session, c.url, {"id": "nope", "label": "safe"}, "alice")
        assert unknown[0] == 404 and unknown[1]["error"]["kind"] == "unknown_item"
        for bad in (b"{not json", b"[1]", {"id": "item-7"}, {"id": "item-7", "label": "maybe"},
                    {"label": "safe"}, {"id": "item-7", "label": "safe", "note": 3}):  # fmt: skip
            status, body = await post(session, c.url, bad, "alice")
            assert status == 400 and body["error"]["kind"] == "bad_request", bad
        async with session.get(f"{c.url}/api/v1/decisions", headers=auth("bob")) as response:
            assert response.status == 405 and response.headers["Allow"] == "POST"
            assert (await response.json())["error"]["kind"] == "method_not_allowed"
        stats = (await get(session, f"{c.url}/api/v1/stats", headers=auth("bob")))[1]
        assert stats["decided_today"] == 1 and stats["decided_today_by_you"] == 1
        async with session.get(f"{c.url}/metrics") as response:  # open, like every /metrics
            metrics = await response.text()
        assert 'modstream_review_decisions_total{label="nsfw"} 1.0' in metrics
        assert 'modstream_review_decisions_total{label="safe"} 0.0' in metrics
        assert "modstream_review_pending 0.0" in metrics
        assert "modstream_review_consumed_total 1.0" in metrics


async def test_every_api_route_needs_a_reviewer_token(broker: EmbeddedBroker) -> None:
    """No token, a wrong token or another scheme: 401 with a typed body on every API route; the page
    itself is public and served under a strict CSP."""
    topics = new_topics()
    async with console(broker, topics) as c, aiohttp.ClientSession() as session:
        routes = [("GET", "/api/v1/queue"), ("POST", "/api/v1/decisions"),
                  ("GET", "/api/v1/image/item-1"), ("GET", "/api/v1/stats")]  # fmt: skip
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": f"Basic {TOKENS['alice']}"}):  # fmt: skip
            for method, path in routes:
                async with session.request(method, c.url + path, headers=headers) as response:
                    assert response.status == 401, (method, path, headers)
                    body = await response.json()
                    assert body["error"]["kind"] == "unauthorized"
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with session.get(c.url + "/") as response:  # the page itself is public
            assert response.status == 200
            page = await response.text()
            assert "/static/review.js" in page
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_images_come_through_the_guarded_fetcher(
    broker: EmbeddedBroker, image_server: ImageServer
) -> None:
    """The console fetches the item's image (the browser never sees its URL); an item whose
    URL points at a private address gets the fetcher's typed refusal instead."""
    assert image_server.served is not None
    url = next(u for u in image_server.served.image_urls() if u.endswith(".jpg"))
    expected = await _download(url)
    topics = new_topics()
    values = [record(1, url, time.time()), record(2, "http://10.1.2.3/inside.jpg", time.time())]
    await produce_review(broker, topics, values, partitions=1)
    async with console(broker, topics) as c, aiohttp.ClientSession() as session:
        await until_pending(c.service, 2)
        async with session.get(f"{c.url}/api/v1/image/item-1", headers=auth("alice")) as response:
            assert response.status == 200
            assert await response.read() == expected
            assert response.headers["Content-Type"] == "image/jpeg"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        status, body = await get(session, f"{c.url}/api/v1/image/item-2", headers=auth("alice"))
        assert status == 422 and body["error"]["kind"] == "blocked_address"
        status, body = await get(session, f"{c.url}/api/v1/image/none", headers=auth("alice"))
        assert status == 404 and body["error"]["kind"] == "unknown_item"


async def _download(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.read()


async def test_a_restart_loses_no_pending_item_and_repeats_no_decided_one(
    any_broker: Broker, image_server: ImageServer
) -> None:
    """Offsets are committed for decided items only: after a restart in the same group the
    undecided items are back, the decided ones are not. On both brokers."""
    broker = any_broker
    assert image_server.served is not None
    url = image_server.served.image_urls()[0]
    topics = new_topics()
    now = time.time()
    values = [record(n, url, now - 10 + n) for n in range(5)]
    await produce_review(broker, topics, values, partitions=1)
    async with console(broker, topics) as c, aiohttp.ClientSession() as session:
        await until_pending(c.service, 5)
        for item_id in ("item-0", "item-1", "item-3"):  # item-2 blocks the commit of item-3
            assert (await post(session, c.url, {"id": item_id, "label": "safe"}, "alice"))[0] == 202
    async with console(broker, topics) as c, aiohttp.ClientSession() as session:
        # Offsets 2-4 are consumed again: item-3 among them, decided, is dropped on arrival.
        await until(lambda: c.service.consumed >= 3, "the three replayed records")
        assert c.service.queue.statistics(time.time()).replays_dropped == 1
        _, body = await get(session, f"{c.url}/api/v1/queue?limit=10", headers=auth("bob"))
        # item-3's offset came after the undecided item-2, so it was replayed too; the console
        # read the recent decisions back at start and does not offer it again.
        assert [item["id"] for item in body["items"]] == ["item-2", "item-4"]


async def test_exported_decisions_refit_the_thresholds(
    broker: EmbeddedBroker, image_server: ImageServer, tmp_path: Path
) -> None:
    """Decide a dozen items, export images.reviewed with ``modstream review --export``, and
    ``modstream eval --results`` fits thresholds from the reviewers' labels (and, with no author
    labels among them, says so in a line instead of an empty table); reading the topic directly
    (``kafka:TOPIC``) gives the same fit."""
    assert image_server.served is not None
    url = image_server.served.image_urls()[0]
    topics = new_topics()
    scores = [0.31, 0.35, 0.38, 0.42, 0.45, 0.48, 0.52, 0.55, 0.6, 0.64, 0.7, 0.74, 0.5]
    values = [orjson.dumps({"id": f"s{n}", "url": url, "nsfw": s, "decision": "review",
                            "policy": "balanced", "model": "open_nsfw@864bb37b",
                            "preprocessing": "exact", "observed_at": time.time() + n})
              for n, s in enumerate(scores)]  # fmt: skip
    await produce_review(broker, topics, values, partitions=1)
    labels = {f"s{n}": "nsfw" if s >= 0.5 else "safe" for n, s in enumerate(scores)}
    labels["s2"], labels["s8"], labels["s12"] = "nsfw", "safe", "skip"  # people disagree; one skip
    async with console(broker, topics) as c, aiohttp.ClientSession() as session:
        await until_pending(c.service, len(scores))
        for item_id, label in labels.items():
            assert (await post(session, c.url, {"id": item_id, "label": label}, "alice"))[0] == 202
    exported = tmp_path / "labels.jsonl"
    done = await _modstream(
        "review", "--bootstrap-servers", broker.bootstrap_servers,
        "--reviewed-topic", topics.reviewed, "--export", str(exported),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"wrote {len(scores)} decisions" in done.stderr.decode()
    out = tmp_path / "fitted"
    done = await _modstream("eval", "--results", str(exported), "--json", "--out", str(out),
                            "--target-fnr", "0.2", "--target-fpr", "0.2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()  # the reviewed items carry no author labels: one line, no table
    assert "no author labels to compare with" in text and "flag+review" not in text
    assert "wrote report.html, report.json, policy.json, scores.csv, roc.png" in text
    report = orjson.loads(done.stdout.splitlines()[-1])
    assert report["labels"] == "reviewers" and report["n"] == len(scores) - 1
    judged = [(s, labels[f"s{n}"]) for n, s in enumerate(scores) if labels[f"s{n}"] != "skip"]
    y = [int(label == "nsfw") for _, label in judged]
    assert report["positives"] == sum(y)
    assert report["auc_roc"] == pytest.approx(roc_auc_score(y, [s for s, _ in judged]), abs=1e-6)
    assert report["thresholds"]["high"]["fpr"] <= 0.2 and report["thresholds"]["low"]["fnr"] <= 0.2
    assert any("cover scores from 0.310 to 0.740" in w for w in report["warnings"])
    assert any("1 skipped" in w for w in report["warnings"])
    policy = orjson.loads((out / "policy.json").read_bytes())
    assert policy["flag_at"] == report["thresholds"]["high"]["threshold"]
    assert policy["model"] == "open_nsfw@864bb37b"
    # The same fit, read straight from the topic instead of an export.
    done = await _modstream(
        "eval", "--results", f"kafka:{topics.reviewed}", "--bootstrap-servers",
        broker.bootstrap_servers, "--json", "--target-fnr", "0.2", "--target-fpr", "0.2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    direct = orjson.loads(done.stdout.splitlines()[-1])
    assert (direct["n"], direct["auc_roc"]) == (report["n"], report["auc_roc"])
    assert direct["thresholds"] == report["thresholds"]


async def _modstream(*args: str) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "modstream", *args], capture_output=True,
        timeout=120,
    )  # fmt: skip


async def test_the_command_serves_the_queue_and_stops_on_sigterm(
    broker: EmbeddedBroker, image_server: ImageServer, tmp_path: Path
) -> None:
    """``modstream review --bootstrap-servers … --reviewers-file …`` as a user starts it."""
    assert image_server.served is not None
    topics = new_topics()
    url = image_server.served.image_urls()[0]
    await produce_review(broker, topics, [record(1, url, time.time())],
                  partitions=1)  # fmt: skip
    reviewers = tmp_path / "reviewers"
    reviewers.write_text("".join(f"{name}:{token}\n" for name, token in TOKENS.items()))
    port = free_loopback_port()
    process = _spawn_review(
        "--bootstrap-servers", broker.bootstrap_servers, "--reviewers-file", str(reviewers),
        "--port", str(port), "--topics", topics.review, "--reviewed-topic", topics.reviewed,
        "--group-id", topics.group, "--allow-cidr", "127.0.0.0/8",
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            items: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while not items:
                assert process.poll() is None and time.monotonic() < deadline
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    status, body = await get(
                        session, f"http://127.0.0.1:{port}/api/v1/queue", headers=auth("bob")
                    )
                    assert status == 200, body
                    items = body["items"]
                await asyncio.sleep(0.2)
            assert [item["id"] for item in items] == ["item-1"]
        assert await terminate(process) == 0
    finally:
        reap(process)


def _spawn_review(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "modstream", "review", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
