"""``modstream serve`` answers Meta HMA's lookup API with HMA's shapes and errors.

A real loopback server with a bank file of HMA's own documented example signals
(``PdqSignal.get_examples()`` of python-threatexchange: the bridge photograph's modifications,
then unrelated images), real OpenVINO, and a real image server for ``?url=`` lookups. The
expected matches are worked out from the examples' distances, not read back from the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import locations
import orjson
import pytest
import pytest_asyncio

from modstream.demo.imageserver import ImageServer
from modstream.models.pdq import distance, parse_hex
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.match.banks import BankSettings
from modstream.pipeline.moderate.step import ModerationSettings
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.serve.app import ServeConfig
from modstream.serve.server import ApiListen, ServerSettings, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")

BRIDGE = (locations.PDQ / "bridge.jpg").read_bytes()
PUBLISHED = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
# HMA's example PDQ signals (python-threatexchange PdqSignal.get_examples): twelve hashes of
# modified copies of the bridge photograph, then two unrelated images and GitHub's logos.
EXAMPLES = [
    "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f06370a2a038f63f0b36e26d596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f0637022a038f67f0b36e26d596621e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f06370a2a068f67f0b36e26d596621e1d33e6339c4e9c9b22",
    "f8f8f0cee0f4a84f06370a22038f67f0b36e2ed596221e1d33e6b39c4e9c9b22",
    "f8f8f0cee0f4a84f0e370a22038f67f0b36e2ed596221e1d33e6b39c4a9c9b22",
    "d8f8f0cec0f4a84f8e370a22038f67f0b36a2ed597231e1d72e6b39c4a9c9b22",
    "f8f8f0cee0f4a84f06370a22038f67f0b36e2ed596621e1d33e6339c4e9c9b22",
    "d0f8f1ccc0f4a84d0a370a3a228f67f0b36e2ed5b6623e1d33e6339c4e9c9b22",
    "d8f8f1eec0f4a84f0e37022a078f63f0b36e2ed596621e1d33e6239c4e9c9b22",
    "d8f8f0cec4f4a84f0637022a078f67f0b36e2ee5b6621e1d33e6239c4e9c9b22",
    "d8f8f0cec0f4a84f0637022a278f67f0b36e2ed596621e1d33e6339c4e9c9b22",
    "e64cc9d91c623882f8d1f1d9a398e78c9f199b3bd83924f2b7e11e0bf861b064",
    "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d",
    "c186f9619659658c4b6916daf934496985f4259c72c39676ab9edb631c3c349c",
]


@dataclass(frozen=True)
class Hma:
    url: str
    images: str  # the image server's base URL


def _expected(signal: str, ids: dict[str, str]) -> list[dict[str, str]]:
    """HMA's matches of ``signal`` in a bank of ``ids`` (id -> hex): within 31, nearest first."""
    query = parse_hex(signal)
    hits = sorted(
        ((distance(query, parse_hex(hex_)), entry) for entry, hex_ in ids.items()),
        key=lambda hit: hit[0],
    )
    return [{"bank_content_id": e, "distance": str(d)} for d, e in hits if d <= 31]


BANK_A = {f"example-{n}": hex_ for n, hex_ in enumerate(EXAMPLES)}
BANK_B = {"bridge-copy": EXAMPLES[3]}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hma(
    scorer_settings: ScorerConfig, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hma]:
    root = tmp_path_factory.mktemp("hma")
    (root / "a.txt").write_text("".join(f"{hex_} {entry}\n" for entry, hex_ in BANK_A.items()))
    (root / "b.txt").write_text("".join(f"{hex_} {entry}\n" for entry, hex_ in BANK_B.items()))
    settings = ServerSettings(
        listen=ApiListen(host="127.0.0.1", port=0, config=ServeConfig()),
        moderation=ModerationSettings(
            scorer=scorer_settings,
            fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=5.0),
            banks=(
                BankSettings(name="BANK_A", path=root / "a.txt"),
                BankSettings(name="BANK_B", path=root / "b.txt"),
            ),
        ),
    )
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, stop, bound))
    async with ImageServer({"bridge.jpg": BRIDGE}) as images:
        try:
            done, _ = await asyncio.wait([task, bound], return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
            assert images.served is not None
            yield Hma(f"http://127.0.0.1:{bound.result()}", images.served.base_url)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _call(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as got:
        return got.status, orjson.loads(await got.read())


def _photo(data: bytes, field: str = "photo") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(field, data, filename="upload.jpg", content_type="image/jpeg")
    return form


async def test_a_signal_lookup_answers_every_bank_in_hmas_shape(hma: Hma) -> None:
    """GET /m/lookup?signal_type=pdq&signal=HEX: {BANK: [{bank_content_id, distance}]}, every
    entry within 31 bits, nearest first; the bridge copies match, the other images do not."""
    status, body = await _call("GET", f"{hma.url}/m/lookup",
                               params={"signal_type": "pdq", "signal": EXAMPLES[0]})  # fmt: skip
    assert status == 200
    assert body == {"BANK_A": _expected(EXAMPLES[0], BANK_A),
                    "BANK_B": _expected(EXAMPLES[0], BANK_B)}  # fmt: skip
    assert len(body["BANK_A"]) == 12 and body["BANK_A"][0] == {
        "bank_content_id": "example-0", "distance": "0"
    }  # fmt: skip
    status, only = await _call("GET", f"{hma.url}/m/lookup",
                               params={"signal_type": "pdq", "signal": EXAMPLES[13],
                                       "banks": "BANK_B"})  # fmt: skip
    assert (status, only) == (200, {})
    status, filtered = await _call("GET", f"{hma.url}/m/lookup",
                                   params={"signal_type": "pdq", "signal": EXAMPLES[13].upper(),
                                           "banks": "BANK_A"})  # fmt: skip
    assert (status, filtered) == (200, {"BANK_A": _expected(EXAMPLES[13], BANK_A)})


async def test_raw_lookup_lists_matches_with_and_without_distances(hma: Hma) -> None:
    params = {"signal_type": "pdq", "signal": EXAMPLES[6]}
    status, plain = await _call("GET", f"{hma.url}/m/raw_lookup", params=params)
    expected = sorted(_expected(EXAMPLES[6], BANK_A) + _expected(EXAMPLES[6], BANK_B),
                      key=lambda m: int(m["distance"]))  # fmt: skip
    assert status == 200 and sorted(plain["matches"]) == sorted(m["bank_content_id"]
                                                                for m in expected)  # fmt: skip
    status, with_distance = await _call("GET", f"{hma.url}/m/raw_lookup",
                                        params={**params, "include_distance": "true"})  # fmt: skip
    assert status == 200
    assert [m["distance"] for m in with_distance["matches"]] == [m["distance"] for m in expected]


async def test_an_uploaded_photo_is_hashed_and_looked_up(hma: Hma) -> None:
    """POST /m/lookup with a multipart 'photo' file: {pdq: {BANK: [...]}}; the photograph's hash
    is HMA's first example, so it matches as that signal does."""
    status, body = await _call("POST", f"{hma.url}/m/lookup", data=_photo(BRIDGE))
    assert status == 200
    assert body == {"pdq": {"BANK_A": _expected(PUBLISHED, BANK_A),
                            "BANK_B": _expected(PUBLISHED, BANK_B)}}  # fmt: skip


async def test_a_url_is_fetched_hashed_and_looked_up(hma: Hma) -> None:
    """GET /m/lookup?url=: {pdq: {...}}; with signal_type=pdq the outer level is elided (HMA);
    POST /m/lookup?url= answers the same."""
    url = f"{hma.images}/img/bridge.jpg"
    status, body = await _call("GET", f"{hma.url}/m/lookup", params={"url": url})
    assert status == 200 and body == {"pdq": {"BANK_A": _expected(PUBLISHED, BANK_A),
                                              "BANK_B": _expected(PUBLISHED, BANK_B)}}  # fmt: skip
    status, elided = await _call("GET", f"{hma.url}/m/lookup",
                                 params={"url": url, "signal_type": "pdq"})  # fmt: skip
    assert (status, elided) == (200, body["pdq"])
    status, posted = await _call("POST", f"{hma.url}/m/lookup", params={"url": url})
    assert (status, posted) == (200, body)


async def test_the_hasher_answers_the_reference_hash(hma: Hma) -> None:
    """GET /h/hash?url= and POST /h/hash: {pdq: HEX}, the hash ThreatExchange publishes."""
    url = f"{hma.images}/img/bridge.jpg"
    assert await _call("GET", f"{hma.url}/h/hash", params={"url": url}) == (200, {"pdq": PUBLISHED})
    assert await _call("POST", f"{hma.url}/h/hash", data=_photo(BRIDGE)) == (
        200,
        {"pdq": PUBLISHED},
    )


@pytest.mark.parametrize(
    ("method", "path", "params", "message"),
    [
        ("GET", "/m/lookup", {"signal_type": "video_md5", "signal": "0" * 32},
         "No such SignalType 'video_md5'"),
        ("GET", "/m/lookup", {"signal": EXAMPLES[0]},
         "Either url or both signal and signal_type are required"),
        ("GET", "/m/lookup", {}, "Either url or both signal and signal_type are required"),
        ("GET", "/m/lookup", {"signal_type": "pdq", "signal": "xyz"},
         "invalid signal: a PDQ hash is 64 hexadecimal characters, not 3"),
        ("GET", "/m/raw_lookup", {"signal_type": "pdq", "signal": EXAMPLES[0],
                                  "include_distance": "maybe"},
         "include_distance: invalid boolean parameter - prefer true/false"),
        ("GET", "/h/hash", {}, "url is required"),
        ("GET", "/h/hash", {"url": "http://x.invalid/a.jpg", "types": "video_md5"},
         "signal type 'video_md5' doesn't exist or is disabled"),
        ("GET", "/m/lookup", {"url": "http://x.invalid/a.jpg", "content_type": "video"},
         "no such content_type: 'video'"),
        ("POST", "/m/lookup", {}, "Missing multipart/form-data file upload"),
    ],
)  # fmt: skip
async def test_bad_requests_get_hmas_errors(
    hma: Hma, method: str, path: str, params: dict[str, str], message: str
) -> None:
    """A bad signal type, a missing or malformed signal, a bad flag, no upload: 400 with HMA's
    {message} (and modstream's kind)."""
    status, body = await _call(method, f"{hma.url}{path}", params=params)
    assert (status, body) == (400, {"message": message, "kind": "bad_request"})


async def test_hostile_uploads_and_urls_get_typed_errors_in_hmas_shape(hma: Hma) -> None:
    """Two files, a field that is no content type, HTML served as a JPEG, a private address:
    each a 4xx with {message, kind}, and the server goes on answering."""
    two = _photo(BRIDGE)
    two.add_field("photo", BRIDGE, filename="second.jpg", content_type="image/jpeg")
    assert await _call("POST", f"{hma.url}/m/lookup", data=two) == (
        400, {"message": "Only one file allowed per request", "kind": "bad_request"}
    )  # fmt: skip
    assert await _call("POST", f"{hma.url}/h/hash", data=_photo(BRIDGE, "video")) == (
        400, {"message": "no such content_type: 'video'", "kind": "bad_request"}
    )  # fmt: skip
    status, html = await _call("GET", f"{hma.url}/h/hash",
                               params={"url": f"{hma.images}/bad/html"})  # fmt: skip
    assert 400 <= status < 500 and html["kind"] in {"unsupported_format", "not_an_image"}, html
    status, private = await _call("GET", f"{hma.url}/m/lookup",
                                  params={"url": "http://10.1.2.3/a.jpg"})  # fmt: skip
    assert 400 <= status < 500 and set(private) == {"message", "kind"}, private
    assert private["kind"] == "blocked_address", private
    status, again = await _call("POST", f"{hma.url}/h/hash", data=_photo(BRIDGE))
    assert (status, again) == (200, {"pdq": PUBLISHED})


async def test_the_examples_are_what_the_bank_holds() -> None:
    """The bank's first twelve entries are the bridge's copies (within 31 of the published
    hash) and the rest are not: the expectations above test something."""
    published = parse_hex(PUBLISHED)
    near = [n for n, hex_ in enumerate(EXAMPLES) if distance(parse_hex(hex_), published) <= 31]
    assert near == list(range(12))


async def test_aiohttps_own_errors_on_hma_routes_are_in_hmas_shape_too(hma: Hma) -> None:
    """A method a route does not take, an unknown /m/ route: HMA's {message} (and kind), the
    Allow header kept."""
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{hma.url}/m/lookup") as got:
            body = orjson.loads(await got.read())
            assert got.status == 405 and set(got.headers["Allow"].split(",")) >= {"GET", "POST"}
        async with session.get(f"{hma.url}/m/nothing") as missing:
            absent = orjson.loads(await missing.read())
            assert missing.status == 404
    assert body["kind"] == "method_not_allowed" and "PUT /m/lookup" in body["message"]
    assert set(body) == {"message", "kind"} and set(absent) == {"message", "kind"}
    assert absent["kind"] == "not_found"
