"""The lookup routes over a real loopback server, on a table filled through the entry codec:
every answer's shape, the inventory filter's short answer, and every bad request a 400 with a
kind while the server keeps answering. (The Kafka side: tests/integration/test_verdicts_e2e.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
import yarl

from modstream.kafka.settings import KafkaSettings
from modstream.verdicts.app import build_app
from modstream.verdicts.config import VerdictSettings
from modstream.verdicts.entries import entry_of_result, read_entry
from modstream.verdicts.service import VerdictService
from modstream.web.site import bound_site

from .test_table import POST, SHA_A, SHA_B, result

pytestmark = pytest.mark.asyncio(loop_scope="session")
NEVER = "at://did:plc:nobody/app.bsky.feed.post/3knever"


@pytest_asyncio.fixture(loop_scope="session")
async def api() -> AsyncIterator[str]:
    settings = VerdictSettings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"))
    service = VerdictService(settings)  # not entered: no broker, the table filled by hand
    for record in (
        result("https://cdn/a", 0.31, "review", "medium", sha=SHA_A),
        result("https://cdn/b", 0.91, "flagged", "high", at=101.0, sha=SHA_B),
    ):
        entry = entry_of_result(record)
        assert entry is not None
        service.table.apply(read_entry(entry.value()))  # type: ignore[arg-type]
    service.loaded.set()
    async with bound_site(build_app(service), "127.0.0.1", 0, port_flag="--port") as port:
        yield f"http://127.0.0.1:{port}"


async def _get(url: str, query: str) -> tuple[int, Any]:
    target = yarl.URL(f"{url}/v1/verdicts?{query}", encoded=True)  # sent as written
    async with aiohttp.ClientSession() as session, session.get(target) as response:
        return response.status, await response.json()


async def _post(url: str, body: bytes) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/verdicts", data=body) as response,
    ):
        return response.status, await response.json()


async def test_a_post_lookup_answers_the_worst_tier_in_the_iab_vocabulary(api: str) -> None:
    status, body = await _get(api, "post=" + quote(POST, safe=""))
    assert status == 200
    assert body == {
        "subject": {"post": POST}, "status": "known", "taxonomy": "iab-content-3.1",
        "risk": "high", "nsfw": 0.91, "decided_by": "model", "images": 2, "updated_at": 101.0,
        "categories": [{"id": "Rm3SiT", "name": "Adult & Explicit Sexual Content",
                        "suitability": "bsr002"}],
        "allowed": {"full": True, "standard": False, "limited": False},
    }  # fmt: skip


async def test_the_inventory_filter_answers_just_allowed_and_risk(api: str) -> None:
    assert await _get(api, "url=https%3A%2F%2Fcdn%2Fa&allow=standard") == (
        200, {"allowed": True, "risk": "medium"})  # fmt: skip
    assert await _get(api, f"sha256={SHA_B}&allow=full") == (200, {"allowed": True, "risk": "high"})
    assert await _get(api, f"sha256={SHA_B}&allow=limited") == (
        200, {"allowed": False, "risk": "high"})  # fmt: skip


async def test_a_subject_never_seen_is_404_unknown(api: str) -> None:
    status, body = await _get(api, "post=" + quote(NEVER, safe=""))
    assert (status, body["status"]) == (404, "unknown")


async def test_a_batch_answers_each_subject_in_order_unknowns_included(api: str) -> None:
    body = b'{"subjects": [{"url": "https://cdn/b"}, {"post": "%s"}, {"sha256": "%s"}]}' % (
        NEVER.encode(), SHA_A.encode())  # fmt: skip
    status, answer = await _post(api, body)
    assert status == 200
    assert [(a["subject"], a["status"], a.get("risk")) for a in answer["verdicts"]] == [
        ({"url": "https://cdn/b"}, "known", "high"), ({"post": NEVER}, "unknown", None),
        ({"sha256": SHA_A}, "known", "medium"),
    ]  # fmt: skip
    status, short = await _post(api, b'{"subjects": [{"url": "https://cdn/b"}], "allow": "full"}')
    assert short["verdicts"] == [
        {"subject": {"url": "https://cdn/b"}, "status": "known", "allowed": True, "risk": "high"}
    ]


@pytest.mark.parametrize(
    ("query", "kind", "says"),
    [
        ("post=", "invalid_subject", "is empty"),
        ("url=" + "x" * 2049, "invalid_subject", "over the limit of 2048"),
        ("post=at%3A%2F%2F%ff%fe", "invalid_subject", "not valid UTF-8"),
        ("post=a&since=1", "bad_request", "unknown query parameter since"),
        ("", "bad_request", "exactly one subject"),
        ("post=a&url=b", "bad_request", "exactly one subject"),
        ("post=a&post=b", "bad_request", "given twice"),
        ("sha256=xyz", "invalid_subject", "64 hexadecimal digits"),
        ("post=a&allow=premium", "bad_request", "not an inventory filter"),
    ],
)
async def test_a_bad_query_is_400_with_a_kind_and_the_next_lookup_answers(
    api: str, query: str, kind: str, says: str
) -> None:
    status, body = await _get(api, query)
    assert (status, body["error"]["kind"]) == (400, kind), body
    assert says in body["error"]["message"]
    assert (await _get(api, f"sha256={SHA_A}"))[0] == 200


@pytest.mark.parametrize(
    ("body", "kind", "says"),
    [
        (b"{not json", "bad_request", "not JSON"),
        (b'{"subjects": {"post": "a"}}', "bad_request", "a list of subjects"),
        (b'{"subjects": [], "limit": 3}', "bad_request", "unknown field limit"),
        (b'{"subjects": [{"post": "a"}, {"who": "b"}]}', "invalid_subject", "subject 1"),
        (b'{"subjects": [{"post": "\\ud800"}]}', "bad_request", "not JSON"),
        (b'{"subjects": [' + b",".join([b'{"post": "p"}'] * 10_000) + b"]}",
         "too_many_subjects", "10000 subjects in one batch, over the cap of 500"),
    ],
)  # fmt: skip
async def test_a_bad_batch_is_400_with_a_kind_and_the_next_lookup_answers(
    api: str, body: bytes, kind: str, says: str
) -> None:
    status, answer = await _post(api, body)
    assert (status, answer["error"]["kind"]) == (400, kind), answer
    assert says in answer["error"]["message"]
    assert (await _post(api, b'{"subjects": [{"post": "a"}]}'))[0] == 200


async def test_readiness_and_metrics(api: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api}/readyz") as response:
            assert response.status == 200
        await _get(api, "post=" + quote(NEVER, safe=""))
        async with session.get(f"{api}/metrics") as response:
            text = await response.text()
    assert 'modstream_verdict_lookups_total{outcome="unknown"}' in text
    assert "modstream_verdict_lookup_seconds_bucket" in text
