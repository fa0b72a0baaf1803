"""The scoring stream end to end: real broker, real HTTP on loopback, real OpenVINO on CPU.

One pipeline run (module fixture) consumes a mix of good images, hostile URLs and malformed
records; each test checks one invariant of what it published, committed and counted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import locations
import orjson
import pytest
import pytest_asyncio
from PIL import Image

from modstream.demo.imageserver import ImageServer
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.fetcher import FetchConfig
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.policy import Decision, Policy
from modstream.pipeline.moderate.step import ModerationSettings
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.pipeline.stream.scoring import StreamConfig
from modstream.pipeline.stream.service import Pipeline, PipelineSettings
from modstream.pipeline.stream.topics import Topics

from .conftest import Broker
from .support import (
    Output,
    Sent,
    committed_offsets,
    end_offsets,
    outputs_then_stop,
    produce,
    scorer_ready,
    unique_group,
    unique_topics,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARTITIONS = 4
POLICY = Policy(name="t", flag_at=0.8, review_at=0.3)
COPIES = 2  # each image is sent this many times, under different URLs
LADDER = locations.LADDER
REFERENCE: dict[str, float] = json.loads((LADDER / "reference.json").read_text())
# Score-ladder images with their reference scores, served beside the bundled samples.
LADDER_NAMES = ("syn_11_0.png", "syn_12_4.png", "syn_14_2.png")
RESULT_FIELDS = {
    "id", "url", "source", "observed_at", "meta", "published_at", "nsfw", "decision", "policy",
    "model", "sha256", "width", "height", "timings",
}  # fmt: skip
TIMING_FIELDS = {"fetch", "decode", "queue", "infer", "total", "batch_size"}
MALFORMED = {
    "not-json": b"this is not JSON {",
    "no-url": b'{"id": "no-url", "source": "integration"}',
    "array": b'[{"url": "http://127.0.0.1/img/a.jpg"}]',
    "tombstone": None,
}


@dataclass(slots=True)
class Run:
    """What was sent, what came out, and what the pipeline committed and counted."""

    topics: Topics
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> event sent
    expected_error: dict[str, str] = field(default_factory=dict)  # id -> error kind
    image_of: dict[str, str] = field(default_factory=dict)  # id -> image name
    images: dict[str, bytes] = field(default_factory=dict)  # image name -> the bytes served
    malformed: dict[str, Sent] = field(default_factory=dict)  # label -> where it landed
    outputs: list[Output] = field(default_factory=list)
    committed: dict[int, int] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)
    produced_ends: dict[int, int] = field(default_factory=dict)  # one past each last offset sent
    samples: dict[str, float | None] = field(default_factory=dict)  # decision -> results counted
    error_kinds_counted: dict[str, float | None] = field(default_factory=dict)

    def by_id(self) -> dict[str, list[Output]]:
        found: dict[str, list[Output]] = {}
        for output in self.outputs:
            if "id" in output.record:
                found.setdefault(output.record["id"], []).append(output)
        return found

    def results(self) -> list[Output]:
        return [o for o in self.outputs if o.topic != self.topics.errors]


def _default_id(url: str) -> str:
    """The id an event without one gets, written out (tests/test_records.py pins literals)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def _events(
    server: ImageServer, ladder: ImageServer
) -> tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, str]]:
    assert server.served is not None and ladder.served is not None
    base = server.served.base_url
    events: dict[str, dict[str, Any]] = {}
    image_of: dict[str, str] = {}
    n = 0
    for copy in range(COPIES):
        for served in (server.served, ladder.served):
            for name, url in zip(served.names, served.image_urls(), strict=True):
                n += 1
                event_id = f"good-{copy}-{name}"
                events[event_id] = {"id": event_id, "url": f"{url}?n={n}", "source": "integration"}
                image_of[event_id] = name
    hostile = {
        "html": (f"{base}/bad/html", "not_an_image"),
        "truncated": (f"{base}/bad/truncated.jpg", "truncated"),
        "missing": (f"{base}/bad/missing.jpg", "http_status"),
        "metadata": (f"{base}/bad/metadata", "blocked_address"),
        "huge": (f"{base}/bad/huge", "too_large"),
        "slow": (f"{base}/bad/slow", "fetch_timeout"),
        "private": ("http://10.0.0.1/x.jpg", "blocked_address"),
        "file": ("file:///etc/passwd", "invalid_url"),
        "empty-label": ("http://a..b/x.jpg", "invalid_url"),  # no resolver can encode it
    }
    expected_error: dict[str, str] = {}
    for label, (url, kind) in hostile.items():
        event_id = f"bad-{label}"
        events[event_id] = {"id": event_id, "url": url, "source": "integration"}
        expected_error[event_id] = kind
    sample = server.served.image_urls()[0]
    events["extra-fields"] = {
        "id": "extra-fields",
        "url": f"{sample}?n=extra",
        "source": "integration",
        "observed_at": 1_700_000_000.5,
        "meta": {"camera": 7},
        "uploader": "alice",
        "tags": ["x", "y"],
    }
    image_of["extra-fields"] = server.served.names[0]
    no_id_url = f"{sample}?n=no-id"
    events[_default_id(no_id_url)] = {"url": no_id_url}
    image_of[_default_id(no_id_url)] = server.served.names[0]
    return events, expected_error, image_of


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def run(
    any_broker: Broker, image_server: ImageServer, scorer_settings: ScorerConfig
) -> AsyncIterator[Run]:
    """Run a pipeline over the mixed input until every record has an output, then stop it.

    The score cache is off, so every copy of an image is fetched, decoded and scored again."""
    topics = unique_topics("stream")
    group = unique_group("stream")
    settings = PipelineSettings(
        kafka=any_broker.kafka,
        partitions=PARTITIONS,
        moderation=ModerationSettings(
            policy=POLICY,
            scorer=scorer_settings,
            fetch=FetchConfig(
                allow_cidrs=parse_cidrs(["127.0.0.0/8"]),
                max_bytes=1024 * 1024,
                total_timeout_s=2.0,
            ),
            cache=CacheConfig(max_entries=0),
        ),
        stream=StreamConfig(topics=topics, group_id=group),
        metrics_port=None,
        session_timeout_s=2.0,  # tansu makes each join wait about half of it
        fetch_max_wait_s=0.02,  # and waits out most of a fetch
    )
    result = Run(topics=topics)
    ladder = ImageServer({name: (LADDER / name).read_bytes() for name in LADDER_NAMES})
    stop, ready = asyncio.Event(), asyncio.Event()
    async with ladder, Pipeline(settings) as pipeline:
        result.events, result.expected_error, result.image_of = _events(image_server, ladder)
        result.images = {**image_server.images, **ladder.images}
        scorer = asyncio.create_task(pipeline.run_scorer(stop, ready))
        try:
            await scorer_ready(ready, scorer)  # the scorer has created the topics
            values: list[bytes | None] = [orjson.dumps(e) for e in result.events.values()]
            values += list(MALFORMED.values())
            sent = await produce(
                any_broker.bootstrap_servers, topics.incoming, values, partitions=PARTITIONS
            )
            result.malformed = dict(zip(MALFORMED, sent[len(result.events) :], strict=True))
            for record in sent:
                result.produced_ends[record.partition] = max(
                    result.produced_ends.get(record.partition, 0), record.offset + 1
                )
            result.outputs = await outputs_then_stop(
                any_broker.bootstrap_servers, topics, len(values), scorer, stop, timeout_s=60
            )
        finally:
            stop.set()
            if not scorer.done():
                scorer.cancel()
            await asyncio.gather(scorer, return_exceptions=True)
        registry = pipeline.metrics.registry
        for decision in Decision:
            result.samples[decision.value] = registry.get_sample_value(
                "modstream_results_total", {"decision": decision.value}
            )
        for kind in {*result.expected_error.values(), "malformed_record"}:
            result.error_kinds_counted[kind] = registry.get_sample_value(
                "modstream_errors_total", {"kind": kind}
            )
    result.ends = await end_offsets(any_broker.bootstrap_servers, topics.incoming)
    result.committed = await committed_offsets(
        any_broker.bootstrap_servers, group, topics.incoming, result.ends
    )
    yield result


def _malformed_outputs(run: Run) -> list[Output]:
    return [o for o in run.outputs if "id" not in o.record]


async def test_exactly_one_output_per_input(run: Run) -> None:
    """Every consumed record, valid or not, yields exactly one output record."""
    counts = Counter(o.record["id"] for o in run.outputs if "id" in o.record)
    assert set(counts) == set(run.events)
    assert {event_id: n for event_id, n in counts.items() if n != 1} == {}
    assert len(_malformed_outputs(run)) == len(MALFORMED)
    assert len(run.outputs) == len(run.events) + len(MALFORMED)


async def test_results_are_routed_by_policy_decision(run: Run) -> None:
    """A result's decision follows the policy's thresholds (flag at 0.8, review at 0.3) on its
    score, and names its output topic."""
    decisions: Counter[str] = Counter()
    for output in run.results():
        record = output.record
        nsfw = record["nsfw"]
        decision = "flagged" if nsfw >= 0.8 else "review" if nsfw >= 0.3 else "safe"
        assert record["decision"] == decision, record
        assert output.topic == f"{run.topics.incoming.removesuffix('.incoming')}.{decision}"
        assert record["policy"] == POLICY.name
        decisions[decision] += 1
    assert set(decisions) == {"flagged", "review", "safe"}, f"the samples span: {decisions}"


async def test_results_describe_the_fetched_image(run: Run) -> None:
    """Result records carry the documented fields, the image's sha256 and size, and timings."""
    results = run.results()
    assert {o.record["id"] for o in results} == set(run.image_of)
    for output in results:
        record = output.record
        assert set(record) >= RESULT_FIELDS, sorted(RESULT_FIELDS - set(record))
        body = run.images[run.image_of[record["id"]]]
        assert record["sha256"] == hashlib.sha256(body).hexdigest()
        assert (record["width"], record["height"]) == Image.open(io.BytesIO(body)).size
        assert 0.0 <= record["nsfw"] <= 1.0
        assert record["model"]
        assert set(record["timings"]) >= TIMING_FIELDS, record["timings"]
        assert record["published_at"] >= record["observed_at"]
        assert output.key == record["id"].encode()
        sent = run.events[record["id"]]
        assert record["url"] == sent["url"]


async def test_same_bytes_get_the_same_score(run: Run) -> None:
    """Each copy of an image, under its own URL and with the cache off, is scored afresh
    (cached false) and gets the same score as the other copies; a ladder image's score is its
    reference score."""
    scores: dict[str, list[float]] = {}
    for output in run.results():
        assert output.record["cached"] is False, output.record
        scores.setdefault(run.image_of[output.record["id"]], []).append(output.record["nsfw"])
    assert {name for name, found in scores.items() if len(found) >= COPIES} >= set(LADDER_NAMES)
    for name, found in scores.items():
        assert max(found) - min(found) <= 1e-5, (name, found)
    ladder = {name: scores[name] for name in LADDER_NAMES}
    assert ladder == {
        name: [pytest.approx(REFERENCE[name], abs=2e-3)] * COPIES for name in LADDER_NAMES
    }


async def test_hostile_urls_become_error_records(run: Run) -> None:
    """Each hostile URL yields one error record of the expected kind, carrying the event."""
    outputs = run.by_id()
    for event_id, kind in run.expected_error.items():
        [output] = outputs[event_id]
        record = output.record
        assert output.topic == run.topics.errors, record
        assert record["error"]["kind"] == kind, (event_id, record["error"])
        assert record["error"]["retriable"] is (kind == "fetch_timeout"), record["error"]
        assert record["error"]["message"]
        assert record["url"] == run.events[event_id]["url"]
        assert "published_at" in record
        assert "nsfw" not in record


async def test_ssrf_guard_names_the_refused_address(run: Run) -> None:
    """The metadata redirect and the private literal are refused as such, not just failed."""
    outputs = run.by_id()
    metadata = outputs["bad-metadata"][0].record["error"]["message"]
    assert "169.254.169.254" in metadata
    assert "link-local" in metadata
    private = outputs["bad-private"][0].record["error"]["message"]
    assert "10.0.0.1" in private
    assert "private" in private


async def test_malformed_records_keep_raw_bytes_and_position(run: Run) -> None:
    """Unreadable input lands on the errors topic with its base64 bytes, partition and offset."""
    malformed = _malformed_outputs(run)
    by_position = {(o.record["partition"], o.record["offset"]): o for o in malformed}
    assert len(by_position) == len(MALFORMED)
    for label, sent in run.malformed.items():
        output = by_position[(sent.partition, sent.offset)]
        record = output.record
        assert output.topic == run.topics.errors
        assert record["error"]["kind"] == "malformed_record", (label, record)
        assert record["source_topic"] == run.topics.incoming
        raw = None if record["raw"] is None else base64.b64decode(record["raw"])
        assert raw == sent.value, label


async def test_unknown_fields_are_kept_in_meta(run: Run) -> None:
    """Fields an event has beyond the schema are kept in meta, next to the meta it brought."""
    [output] = run.by_id()["extra-fields"]
    record = output.record
    assert record["meta"] == {"camera": 7, "uploader": "alice", "tags": ["x", "y"]}
    assert record["observed_at"] == 1_700_000_000.5
    assert record["source"] == "integration"
    assert not {"uploader", "tags"} & set(record)


async def test_event_without_id_gets_one(run: Run) -> None:
    """An event without id is published under the id derived from its URL."""
    [event_id] = [event_id for event_id, event in run.events.items() if "id" not in event]
    [output] = run.by_id()[event_id]
    assert output.record["id"] == event_id == _default_id(run.events[event_id]["url"])
    assert output.record["source"] == "unknown"
    assert output.topic != run.topics.errors


async def test_committed_offsets_reach_the_end_of_the_input(run: Run) -> None:
    """After a clean stop the group has committed every input partition up to its end."""
    assert run.ends == run.produced_ends
    assert set(run.ends) == set(range(PARTITIONS))
    assert run.committed == run.ends


async def test_metrics_count_what_was_published(run: Run) -> None:
    """The Prometheus counters match the published results by decision and errors by kind."""
    published = Counter(o.record["decision"] for o in run.results())
    assert {d: run.samples[d] or 0 for d in run.samples} == {
        d.value: float(published[d.value]) for d in Decision
    }
    kinds = Counter(o.record["error"]["kind"] for o in run.outputs if o.topic == run.topics.errors)
    assert {k: v or 0 for k, v in run.error_kinds_counted.items()} == {
        k: float(kinds[k]) for k in run.error_kinds_counted
    }
