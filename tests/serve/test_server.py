"""``modstream serve`` over a real loopback server, real OpenVINO on the CPU.

Concurrent requests batch together and get the scores ``modstream score`` gives for the same
files; every hostile request gets its status and a typed error; API keys are enforced.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import imagegen
import locations
import mediagen
import orjson
import pytest
import pytest_asyncio
from PIL import Image

from modstream.demo.imageserver import ImageServer, sample_images
from modstream.models.preprocess import Preprocessing
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.match.banks import BankSettings
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.moderate.policy import PRESETS
from modstream.pipeline.moderate.step import ModerationSettings
from modstream.pipeline.score.scorer import Scorer, ScorerConfig
from modstream.serve.app import ServeConfig
from modstream.serve.server import ApiListen, ServerSettings, api_site, serve

pytestmark = pytest.mark.asyncio(loop_scope="session")
FIXTURES = locations.LADDER
REFERENCE: dict[str, float] = json.loads((FIXTURES / "reference.json").read_text())
REQUESTS = 48
KEY = "k-3f9a1c0d2b7e"


@dataclass(frozen=True, slots=True)
class Api:
    url: str
    images: Path  # REQUESTS distinct image files


def _corpus(directory: Path) -> Path:
    """48 distinct images: the score ladder, the bundled samples, and photo-like JPEGs."""
    directory.mkdir()
    for path in sorted(FIXTURES.glob("*.png")):
        shutil.copy(path, directory / path.name)
    for name, data in sample_images().items():
        (directory / name).write_bytes(data)
    seed = 0
    while len(list(directory.iterdir())) < REQUESTS:
        buffer = io.BytesIO()
        Image.fromarray(imagegen.photo_like(seed=seed)).save(buffer, "JPEG", quality=88)
        (directory / f"photo-{seed}.jpg").write_bytes(buffer.getvalue())
        seed += 1
    return directory


@asynccontextmanager
async def _running(settings: ServerSettings) -> AsyncIterator[str]:
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, stop, bound))
    done, _ = await asyncio.wait([task, bound], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield f"http://127.0.0.1:{bound.result()}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _settings(scorer: ScorerConfig, **api: Any) -> ServerSettings:
    return ServerSettings(
        listen=ApiListen(host="127.0.0.1", port=0, config=ServeConfig(**api)),
        moderation=ModerationSettings(
            scorer=scorer,
            fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=5.0),
        ),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(
    scorer_settings: ScorerConfig, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    images = _corpus(tmp_path_factory.mktemp("serve") / "images")
    async with _running(_settings(scorer_settings)) as url:
        async with aiohttp.ClientSession() as session:
            for _attempt in range(600):
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.1)
        yield Api(url, images)


async def _post(
    session: aiohttp.ClientSession, url: str, **kwargs: Any
) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    async with session.post(f"{url}/v1/score", **kwargs) as response:
        return response.status, orjson.loads(await response.read()), response.headers


def _reference_scores(images: Path, cache_dir: Path) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        # --pdq on: the test's server hashes every image (the scorer's default), and a hashed
        # JPEG is decoded whole in fast mode too, so its screen crop is made from that decode.
        [sys.executable, "-m", "modstream", "score", "--json", "--no-progress", "--pdq", "on",
         "--cache-dir", str(cache_dir), str(images)],
        capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    return {Path(line["input"]).name: line for line in lines}


def _mean_batch_size(metrics: str) -> float:
    total = float(re.search(r"^modstream_batch_size_sum (\S+)$", metrics, re.M)[1])  # type: ignore[index]
    count = float(re.search(r"^modstream_batch_size_count (\S+)$", metrics, re.M)[1])  # type: ignore[index]
    return total / count


async def test_concurrent_requests_batch_and_match_modstream_score(
    api: Api, ov_cache_dir: Path
) -> None:
    """48 concurrent uploads: each gets the score and decision modstream score gives for the
    same file, and /metrics shows batches larger than one."""
    files = sorted(api.images.iterdir())
    assert len(files) == REQUESTS
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(_post(session, api.url, data=path.read_bytes()) for path in files)
        )
        async with session.get(f"{api.url}/metrics") as response:
            metrics = await response.text()
    reference = await asyncio.to_thread(_reference_scores, api.images, ov_cache_dir)
    for path, (status, body, _headers) in zip(files, answers, strict=True):
        assert status == 200, (path.name, body)
        expected = reference[path.name]
        assert body["nsfw"] == pytest.approx(expected["nsfw"], abs=1e-4), path.name
        assert body["decision"] == expected["decision"], path.name
        assert body["sha256"] == expected["sha256"]
        assert body["pdq"] == expected["pdq"] and body["pdq"] is not None, path.name
        assert set(body) == set(expected) - {"input"}, "serve and score carry the same fields"
    assert _mean_batch_size(metrics) > 1.0


async def test_a_known_hash_is_answered_from_the_cache(api: Api) -> None:
    """After an image is scored, GET /v1/hash/{sha256} returns its result; others are 404."""
    data = (api.images / "photo-0.jpg").read_bytes()
    async with aiohttp.ClientSession() as session:
        status, scored, _ = await _post(session, api.url, data=data)
        assert status == 200
        async with session.get(f"{api.url}/v1/hash/{scored['sha256'].upper()}") as response:
            assert response.status == 200
            known = orjson.loads(await response.read())
        async with session.get(f"{api.url}/v1/hash/{'0' * 64}") as response:
            assert response.status == 404
            assert orjson.loads(await response.read())["error"]["kind"] == "not_found"
        async with session.get(f"{api.url}/v1/hash/not-a-hash") as response:
            assert response.status == 400
    assert known["nsfw"] == scored["nsfw"] and known["cached"] is True


async def test_multipart_and_url_requests_are_scored_like_raw_bytes(
    api: Api, image_server: ImageServer
) -> None:
    """The multipart field 'image' and a JSON url (fetched through the guard) give the same
    score as the raw upload of those bytes."""
    assert image_server.served is not None
    name = image_server.served.names[0]
    raw = sample_images()[name]
    async with aiohttp.ClientSession() as session:
        _, direct, _ = await _post(session, api.url, data=raw)
        form = aiohttp.FormData()
        form.add_field("image", raw, filename=name, content_type="application/octet-stream")
        status, multipart, _ = await _post(session, api.url, data=form)
        assert status == 200
        url = f"{image_server.served.image_urls()[0]}?n=serve"
        status, fetched, _ = await _post(session, api.url, json={"url": url})
        assert status == 200
    assert direct["nsfw"] == multipart["nsfw"] == fetched["nsfw"]
    assert fetched["timings"]["fetch"] > 0


HOSTILE: list[tuple[str, dict[str, Any], int, str]] = [
    ("garbage", {"data": imagegen.garbage()}, 415, "not_an_image"),
    ("html", {"data": imagegen.html_page()}, 415, "not_an_image"),
    ("empty", {"data": b""}, 422, "empty"),
    ("truncated", {"data": imagegen.truncated_jpeg()}, 422, "truncated"),
    ("png bomb", {"data": imagegen.png_bomb()}, 422, "decompression_bomb"),
    ("corrupt png", {"data": imagegen.png_corrupt_data()}, 422, "decode_failed"),
    ("40 MB", {"data": io.BytesIO(b"\xff" * (40 * 1024 * 1024))}, 413, "too_large"),
    ("bad json", {"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400,
     "bad_request"),
    ("json without url", {"json": {"link": "x"}}, 400, "bad_request"),
    ("private address", {"json": {"url": "http://10.0.0.1/a.jpg"}}, 422, "blocked_address"),
    ("metadata address", {"json": {"url": "http://169.254.169.254/latest"}}, 422,
     "blocked_address"),
    ("not http", {"json": {"url": "file:///etc/passwd"}}, 422, "invalid_url"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "request_kwargs", "status", "kind"), HOSTILE,
                         ids=[case[0] for case in HOSTILE])  # fmt: skip
async def test_hostile_requests_get_a_typed_error_and_the_server_keeps_going(
    api: Api, label: str, request_kwargs: dict[str, Any], status: int, kind: str
) -> None:
    """Each hostile request gets its status and a JSON error with a stable kind; the next
    request is served normally."""
    async with aiohttp.ClientSession() as session:
        got, body, _ = await _post(session, api.url, **request_kwargs)
        assert (got, body["error"]["kind"]) == (status, kind), (label, body)
        assert body["error"]["message"]
        async with session.get(f"{api.url}/healthz") as response:
            assert response.status == 200


async def test_an_image_host_that_breaks_the_http_exchange_is_a_bad_gateway(api: Api) -> None:
    """A URL whose host answers with another protocol's banner: 502 fetch_failed, our request
    was fine and the host failed it."""

    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(banner, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/a.jpg"
        status, body, _ = await _post(session, api.url, json={"url": url})
    assert (status, body["error"]["kind"]) == (502, "fetch_failed"), body
    assert "not valid HTTP" in body["error"]["message"]


async def test_a_chunked_body_is_cut_off_at_the_limit(api: Api) -> None:
    """A body with no Content-Length (chunked) is read only up to the 20 MB limit: 413."""
    sent = 0

    async def forever() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < 200 * 1024 * 1024:
            sent += 1024 * 1024
            yield b"\0" * (1024 * 1024)

    async with aiohttp.ClientSession() as session:
        status, body, _ = await _post(session, api.url, data=forever())
    assert (status, body["error"]["kind"]) == (413, "too_large")
    assert sent < 60 * 1024 * 1024, "the server kept reading far past the limit"


async def test_a_multipart_body_without_an_image_field_is_a_bad_request(api: Api) -> None:
    form = aiohttp.FormData()
    form.add_field("picture", b"x", filename="a.jpg")
    async with aiohttp.ClientSession() as session:
        status, body, _ = await _post(session, api.url, data=form)
    assert (status, body["error"]["kind"]) == (400, "bad_request")


# What /openapi.json promises POST /v1/score answers, written out: status by error kind.
SCORE_ERRORS = {
    "bad_request": 400, "unauthorized": 401, "too_large": 413, "not_an_image": 415,
    "unsupported_format": 415, "empty": 422, "truncated": 422, "decompression_bomb": 422,
    "decode_failed": 422, "invalid_url": 422, "blocked_address": 422, "device_error": 500,
    "scorer_closed": 500, "model_error": 500, "weights_not_found": 500,
    "checksum_mismatch": 500, "internal": 500, "connect_failed": 502, "fetch_failed": 502,
    "http_status": 502, "too_many_redirects": 502, "overloaded": 503, "fetch_timeout": 504,
    "method_not_allowed": 405, "unsupported_codec": 415, "too_long": 422,
    "too_many_frames": 422, "decode_timeout": 422, "blocked_path": 422,
}  # fmt: skip


async def test_the_openapi_document_names_every_route_and_error_kind(api: Api) -> None:
    """/openapi.json lists the routes, and under each status of POST /v1/score the kinds that
    status carries, as written above; the Error schema's kinds add the hash route's 404."""
    async with aiohttp.ClientSession() as session, session.get(f"{api.url}/openapi.json") as got:
        document = orjson.loads(await got.read())
    assert set(document["paths"]) == {
        "/v1/score", "/v1/hash", "/v1/hash/{sha256}", "/healthz", "/readyz", "/metrics",
        "/m/lookup", "/m/raw_lookup", "/h/hash",
    }  # fmt: skip
    responses = document["paths"]["/v1/score"]["post"]["responses"]
    documented = {
        kind: int(status)
        for status, response in responses.items()
        if status != "200"
        for kind in re.findall(r"(?:^|; )([a-z_]+): ", response["description"])
    }
    assert documented == SCORE_ERRORS
    error_schema = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert error_schema["properties"]["kind"]["enum"] == sorted({*SCORE_ERRORS, "not_found"})


async def test_api_keys_are_required_when_configured(scorer_settings: ScorerConfig) -> None:
    """With keys, a request without one or with a wrong one is 401; Bearer and X-API-Key both
    work; health, readiness and metrics stay open."""
    data = sample_images()["photo-a.jpg"]
    settings = _settings(scorer_settings, api_keys=frozenset({KEY, "other"}))
    async with _running(settings) as url, aiohttp.ClientSession() as session:
        status, body, headers = await _post(session, url, data=data)
        assert (status, body["error"]["kind"]) == (401, "unauthorized")
        assert "Bearer" in headers["WWW-Authenticate"]
        status, _, _ = await _post(session, url, data=data, headers={"X-API-Key": "wrong"})
        assert status == 401
        status, _, _ = await _post(session, url, data=data, headers={"X-API-Key": KEY})
        assert status == 200
        bearer = {"Authorization": f"Bearer {KEY}"}
        status, _, _ = await _post(session, url, data=data, headers=bearer)
        assert status == 200
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200


async def _always_ready() -> str | None:
    return None


def _release(fifo: Path) -> None:
    """Unblock a reader still waiting on ``fifo`` (a test that failed before writing to it)."""
    try:
        descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: nobody is reading, nothing to release
            raise
    else:
        os.close(descriptor)


async def test_a_full_scorer_answers_503_overloaded_with_retry_after(
    scorer_settings: ScorerConfig, tmp_path: Path
) -> None:
    """With the scorer's one slot taken, a request waits admission_timeout_s and is refused:
    503, kind overloaded, Retry-After; once the slot is free the same request is scored."""
    held, asked = "syn_12_4.png", "syn_11_3.png"
    fifo = tmp_path / held
    os.mkfifo(fifo)  # the scorer reads it on its decode pool: the slot stays taken until we write
    config = dataclasses.replace(scorer_settings, max_pending=1, admission_timeout_s=0.2)
    metrics = PipelineMetrics()
    async with await Scorer.start(config) as scorer:
        moderator = Moderator(scorer, PRESETS["balanced"], metrics=metrics)
        listen = ApiListen(host="127.0.0.1", port=0)
        async with (
            api_site(moderator, metrics, listen, ready=_always_ready) as port,
            aiohttp.ClientSession() as session,
        ):
            holder = asyncio.create_task(scorer.score(fifo))
            try:
                # Opening a FIFO for writing returns once its reader has opened it: the holder
                # has been admitted and its decode thread is reading.
                writer = await asyncio.to_thread(fifo.open, "wb")
                url = f"http://127.0.0.1:{port}"
                with writer:
                    body = (FIXTURES / asked).read_bytes()
                    refused, error, headers = await _post(session, url, data=body)
                    writer.write((FIXTURES / held).read_bytes())
            finally:
                await asyncio.to_thread(_release, fifo)
            held_result = await holder
            scored, result, _ = await _post(session, url, data=body)
    assert (refused, error["error"]["kind"], headers["Retry-After"]) == (503, "overloaded", "1")
    assert "0.2 s" in error["error"]["message"]
    assert metrics.registry.get_sample_value("modstream_errors_total", {"kind": "overloaded"}) == 1
    assert held_result.nsfw == pytest.approx(REFERENCE[held], abs=2e-3)
    assert scored == 200, result
    assert result["nsfw"] == pytest.approx(REFERENCE[asked], abs=2e-3)


async def test_a_failure_no_code_mapped_is_a_json_internal_error(
    scorer_settings: ScorerConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """The API's last resort: a moderator built without a fetcher (the one such bug the code
    names) asked for a URL answers 500 with the typed error internal and logs the traceback;
    the next request is served; an unknown route is a JSON not_found (404) and GET on the
    scoring route a JSON method_not_allowed (405) naming the method it takes, as documented."""
    metrics = PipelineMetrics()
    image = (FIXTURES / "syn_11_3.png").read_bytes()
    async with await Scorer.start(scorer_settings) as scorer:
        moderator = Moderator(scorer, PRESETS["balanced"], metrics=metrics)  # no fetcher
        listen = ApiListen(host="127.0.0.1", port=0)
        async with (
            api_site(moderator, metrics, listen, ready=_always_ready) as port,
            aiohttp.ClientSession() as session,
        ):
            url = f"http://127.0.0.1:{port}"
            failed, error, _ = await _post(session, url, json={"url": "http://127.0.0.1/a.jpg"})
            scored, result, _ = await _post(session, url, data=image)
            async with session.get(f"{url}/v2/nothing") as response:
                unknown = (response.status, orjson.loads(await response.read()))
            async with session.get(f"{url}/v1/score") as response:
                wrong_method = (response.status, orjson.loads(await response.read()))
                allow = response.headers["Allow"]
    assert (failed, error) == (500, {"error": {
        "kind": "internal",
        "message": "internal error: RuntimeError: this moderator was built without a fetcher",
    }})  # fmt: skip
    assert any(record.exc_info for record in caplog.records if record.name == "modstream.web")
    assert scored == 200 and result["nsfw"] == pytest.approx(REFERENCE["syn_11_3.png"], abs=2e-3)
    assert unknown == (404, {"error": {
        "kind": "not_found", "message": "GET /v2/nothing: Not Found",
    }})  # fmt: skip
    assert wrong_method == (405, {"error": {
        "kind": "method_not_allowed",
        "message": "GET /v1/score: Method Not Allowed (this route takes POST)",
    }})  # fmt: skip
    assert allow == "POST"


@pytest.mark.parametrize("first_pass", [Preprocessing.FAST, Preprocessing.EXACT])
async def test_post_hash_answers_the_hash_and_its_bank_match_and_score_carries_them(
    scorer_settings: ScorerConfig, tmp_path: Path, first_pass: Preprocessing
) -> None:
    """POST /v1/hash returns an upload's PDQ hash and its match in the server's banks without
    scoring it; /v1/score's result carries the same hash and match and decides 'matched',
    whichever pass the scorer decodes first (the screen's, or the exact one, as it does on a CPU
    without a cheaper screen precision); a body that is not an image is a typed 415, and the
    server goes on."""
    photo = (locations.PDQ / "bridge.jpg").read_bytes()
    bank = tmp_path / "known.txt"
    bank.write_text("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 case-7\n")
    scorer = dataclasses.replace(scorer_settings, preprocessing=first_pass)
    settings = _settings(scorer)
    settings = dataclasses.replace(settings, moderation=dataclasses.replace(
        settings.moderation, banks=(BankSettings(name="known", path=bank),)))  # fmt: skip
    async with _running(settings) as url, aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/hash", data=photo) as response:
            assert response.status == 200
            hashed = orjson.loads(await response.read())
        assert hashed["pdq_quality"] == 100 and len(hashed["pdq"]) == 64
        assert hashed["match"]["bank"] == "known" and hashed["match"]["id"] == "case-7"
        assert hashed["match"]["distance"] <= 10 and (hashed["width"], hashed["height"]) == (
            1600, 1004)  # fmt: skip
        status, scored, _headers = await _post(session, url, data=photo)
        assert status == 200 and scored["decision"] == "matched"
        assert (scored["pdq"], scored["match"]) == (hashed["pdq"], hashed["match"])
        async with session.post(f"{url}/v1/hash", data=b"<html>no</html>") as response:
            assert response.status == 415
            assert orjson.loads(await response.read())["error"]["kind"] == "not_an_image"
        async with session.get(f"{url}/metrics") as response:
            metrics = await response.text()
    # Both lookups counted and matched in bank "known", which holds one hash.
    assert re.search(r"^modstream_hash_lookups_total 2\.0$", metrics, re.M), metrics
    assert re.search(r'^modstream_hash_matches_total\{bank="known"\} 2\.0$', metrics, re.M)
    assert re.search(r'^modstream_hash_bank_hashes\{bank="known"\} 1\.0$', metrics, re.M)
    assert re.search(r"^modstream_hash_lookup_seconds_count 2\.0$", metrics, re.M)


async def test_animations_and_videos_are_scored_by_their_worst_frame(api: Api) -> None:
    """POST /v1/score with an animated GIF and an MP4: the explicit frame decides, with
    ``frames`` saying which; a truncated MP4 is a 422 with kind truncated."""
    clip = mediagen.video("mp4")
    async with aiohttp.ClientSession() as session:
        results = []
        for body in (mediagen.animation("GIF"), clip):
            status, scored, _headers = await _post(session, api.url, data=body)
            assert status == 200 and scored["decision"] == "flagged", scored
            assert max(scored["frames"]["scores"]) == scored["nsfw"]
            results.append(scored["frames"])
        status, failed, _headers = await _post(session, api.url, data=clip[: len(clip) // 2])
    assert status == 422 and failed["error"]["kind"] == "truncated"
    animation, video = results
    assert animation["worst_index"] == 4  # the explicit frame, shown from 2.0 s to 2.5 s
    assert 2.0 <= video["worst_offset_s"] < 2.5
