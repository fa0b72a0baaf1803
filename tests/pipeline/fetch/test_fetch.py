"""The fetcher against real loopback HTTP servers: limits, redirects, and the SSRF guard."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import locations
import pytest
from aiohttp import web

from modstream.demo.imageserver import ImageServer
from modstream.errors import (
    BlockedAddress,
    BodyTooLarge,
    FetchError,
    FetchTimeout,
    HttpStatusError,
    InvalidUrl,
    TooManyRedirects,
)
from modstream.kafka.broker import free_loopback_port
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.fetcher import FetchConfig, Fetcher

# The async fixtures below run on the session loop (the project default), so the tests must too.
pytestmark = pytest.mark.asyncio(loop_scope="session")
LOOPBACK = parse_cidrs(["127.0.0.0/8"])


@pytest.fixture
async def server() -> AsyncIterator[ImageServer]:
    async with ImageServer() as running:
        yield running


@pytest.fixture
async def odd_server() -> AsyncIterator[str]:
    """Endpoints the image server does not have: a redirect loop, a redirect to a URL that does
    not parse, a gzip bomb, a liar."""

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(request.url))

    async def gzip_bomb(_request: web.Request) -> web.Response:
        body = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def declared_huge(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x", headers={"Content-Length": "1"}, status=200)

    async def bad_location(_request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "http://[::1/x.jpg"})

    app = web.Application()
    app.router.add_get("/bad-location", bad_location)
    app.router.add_get("/loop", loop)
    app.router.add_get("/gzip", gzip_bomb)
    app.router.add_get("/small", declared_huge)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


# What a server that does not speak HTTP properly sends back, by request path.
BROKEN_ANSWERS = {
    "/garbage": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",  # another protocol on the port
    "/mid-headers": b"HTTP/1.1 200 OK\r\nContent-Type: ima",  # then the connection closes
    "/short-body": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789",
    "/bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    "/silence": b"",  # reads the request, answers nothing, hangs up
}


@pytest.fixture
async def broken_server() -> AsyncIterator[str]:
    """A TCP server on loopback that reads one request and answers :data:`BROKEN_ANSWERS`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1].decode()
        writer.write(BROKEN_ANSWERS[path])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def test_fetches_an_image_from_an_allowed_range(server: ImageServer) -> None:
    """With loopback allowed, a sample image comes back whole."""
    assert server.served is not None
    url = server.served.image_urls()[0]
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK)) as fetcher:
        fetched = await fetcher.fetch(url)
    assert fetched.body == server.images[server.served.names[0]]
    assert fetched.status == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "10.0.0.1", "169.254.169.254"])
async def test_blocked_hosts_are_refused_without_allow(host: str) -> None:
    """Loopback, private and metadata hosts are refused, by literal address or by name."""
    async with Fetcher(FetchConfig(connect_timeout_s=1.0)) as fetcher:
        with pytest.raises(BlockedAddress) as caught:
            await fetcher.fetch(f"http://{host}:9/x.jpg")
    assert caught.value.kind == "blocked_address"


async def test_redirect_to_metadata_is_refused_even_with_loopback_allowed(
    server: ImageServer,
) -> None:
    """Every redirect hop is checked again: a hop to 169.254.169.254 is blocked."""
    assert server.served is not None
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK)) as fetcher:
        with pytest.raises(BlockedAddress, match=r"169\.254\.169\.254"):
            await fetcher.fetch(f"{server.served.base_url}/bad/metadata")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://x/"])
async def test_non_http_schemes_are_invalid(url: str) -> None:
    """Only http and https are fetched."""
    async with Fetcher() as fetcher:
        with pytest.raises(InvalidUrl):
            await fetcher.fetch(url)


async def test_a_redirect_to_a_url_that_does_not_parse_is_invalid_url(odd_server: str) -> None:
    """A Location header that is no URL (an unclosed IPv6 bracket) is checked like every hop:
    invalid_url naming the redirect, not an exception the fetcher does not know."""
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK)) as fetcher:
        with pytest.raises(InvalidUrl) as caught:
            await fetcher.fetch(f"{odd_server}/bad-location")
    assert caught.value.kind == "invalid_url"
    assert "http://[::1/x.jpg" in str(caught.value)
    assert "a redirect from 127.0.0.1" in str(caught.value)


async def test_http_errors_are_typed(server: ImageServer) -> None:
    """A 404 is an http_status error carrying the status."""
    assert server.served is not None
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK)) as fetcher:
        with pytest.raises(HttpStatusError) as caught:
            await fetcher.fetch(f"{server.served.base_url}/bad/missing.jpg")
    assert caught.value.status == 404


async def test_endless_body_is_cut_off(server: ImageServer) -> None:
    """A body past max_bytes stops downloading and is too_large."""
    assert server.served is not None
    config = FetchConfig(allow_cidrs=LOOPBACK, max_bytes=1024 * 1024)
    async with Fetcher(config) as fetcher:
        with pytest.raises(BodyTooLarge) as caught:
            await fetcher.fetch(f"{server.served.base_url}/bad/huge")
    assert caught.value.kind == "too_large"


async def test_gzip_bomb_is_cut_off_after_decompression(odd_server: str) -> None:
    """50 MB of zeros sent gzip-compressed is cut at the decompressed limit."""
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK, max_bytes=1024 * 1024)) as fetcher:
        with pytest.raises(BodyTooLarge):
            await fetcher.fetch(f"{odd_server}/gzip")


async def test_slow_server_times_out(server: ImageServer) -> None:
    """A trickling body ends as fetch_timeout at the total deadline."""
    assert server.served is not None
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK, total_timeout_s=1.0)) as fetcher:
        with pytest.raises(FetchTimeout) as caught:
            await fetcher.fetch(f"{server.served.base_url}/bad/slow")
    assert caught.value.retriable


async def test_redirect_loop_is_bounded(odd_server: str) -> None:
    """A redirect loop stops at max_redirects."""
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK, max_redirects=3)) as fetcher:
        with pytest.raises(TooManyRedirects):
            await fetcher.fetch(f"{odd_server}/loop")


async def test_connection_refused_is_a_fetch_error() -> None:
    """Nothing listening is a typed, retriable connect failure, once every attempt failed."""
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK)) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch("http://127.0.0.1:9/x.jpg")
    assert caught.value.kind == "connect_failed"
    assert caught.value.attempts == FetchConfig().max_attempts


@pytest.fixture
async def flaky_server() -> AsyncIterator[tuple[str, list[str]]]:
    """``/hangs-once``: the first request never gets a response, later ones get an image;
    ``/hangs``: no request ever gets one. Yields the base URL and the paths requested."""
    body = (locations.LADDER / "syn_12_4.png").read_bytes()
    requested: list[str] = []
    released = asyncio.Event()

    async def hangs_once(request: web.Request) -> web.Response:
        requested.append(request.path)
        if requested.count(request.path) == 1:
            await released.wait()
        return web.Response(body=body, content_type="image/png")

    async def hangs(request: web.Request) -> web.Response:
        requested.append(request.path)
        await released.wait()
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_get("/hangs-once", hangs_once)
    app.router.add_get("/hangs", hangs)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", requested
    finally:
        released.set()
        await runner.cleanup()


async def test_a_hung_first_request_is_retried_within_the_deadline(
    flaky_server: tuple[str, list[str]],
) -> None:
    """A server that never answers the first request: the fetcher asks again after the
    response timeout and gets the image, within the total deadline, and says it took two."""
    base, requested = flaky_server
    config = FetchConfig(allow_cidrs=LOOPBACK, total_timeout_s=3.0, response_timeout_s=0.3)
    async with Fetcher(config) as fetcher:
        fetched = await fetcher.fetch(f"{base}/hangs-once")
    assert fetched.body.startswith(b"\x89PNG")
    assert fetched.attempts == 2
    assert requested == ["/hangs-once", "/hangs-once"]


async def test_a_port_refusing_connections_for_a_second_is_retried() -> None:
    """A host restarting (nothing listens for about a second, then a server does): the fetch
    retries with backoff and succeeds instead of becoming connect_failed."""
    port = free_loopback_port()
    body = b"\x89PNG\r\n\x1a\n" + b"\0" * 64

    async def image(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_get("/x.png", image)
    runner = web.AppRunner(app)
    await runner.setup()

    async def start_late() -> None:
        await asyncio.sleep(1.0)  # the outage being simulated, not a synchronisation
        await web.TCPSite(runner, "127.0.0.1", port).start()

    starting = asyncio.create_task(start_late())
    try:
        async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK, total_timeout_s=10.0)) as fetcher:
            fetched = await fetcher.fetch(f"http://127.0.0.1:{port}/x.png")
    finally:
        await starting
        await runner.cleanup()
    assert fetched.body == body
    assert fetched.attempts >= 2


async def test_retries_stop_at_the_deadline_and_the_error_counts_them(
    flaky_server: tuple[str, list[str]],
) -> None:
    """A server that never answers: requests are retried until the total deadline, then one
    fetch_timeout that says how many attempts were made."""
    base, requested = flaky_server
    config = FetchConfig(allow_cidrs=LOOPBACK, total_timeout_s=1.5, response_timeout_s=0.3)
    async with Fetcher(config) as fetcher:
        with pytest.raises(FetchTimeout) as caught:
            await fetcher.fetch(f"{base}/hangs")
    attempts = caught.value.attempts
    assert 2 <= attempts <= config.max_attempts
    assert requested == ["/hangs"] * attempts
    assert caught.value.to_dict()["attempts"] == attempts
    assert f"({attempts} attempts)" in str(caught.value)


async def test_a_failure_that_cannot_mend_is_not_retried(server: ImageServer) -> None:
    """An HTTP 404 is final: one request, one http_status error with attempts 1."""
    assert server.served is not None
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK)) as fetcher:
        with pytest.raises(HttpStatusError) as caught:
            await fetcher.fetch(f"{server.served.base_url}/bad/missing.jpg")
    assert caught.value.attempts == 1


@pytest.mark.parametrize("path", sorted(BROKEN_ANSWERS))
async def test_a_server_that_breaks_the_http_exchange_is_fetch_failed(
    broken_server: str, path: str
) -> None:
    """Garbage for a status line, a connection closed mid-headers or mid-body, a broken chunk:
    fetch_failed, whose message says what went wrong without repeating our request headers."""
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK, total_timeout_s=5.0)) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(f"{broken_server}{path}")
    assert type(caught.value) is FetchError, caught.value
    assert caught.value.kind == "fetch_failed"
    assert not caught.value.retriable
    message = str(caught.value)
    assert message.startswith("fetching from 127.0.0.1 failed: "), message
    assert "User-Agent" not in message and "RequestInfo" not in message, message


@pytest.mark.parametrize(
    "url",
    ["http://a..b/x.jpg", f"http://{'a' * 64}.example/x.jpg", "http://xn--zz/x.jpg"],
    ids=["empty label", "64-character label", "broken punycode"],
)
async def test_host_names_no_resolver_can_encode_are_invalid_urls(url: str) -> None:
    """Host names that parse as URLs but cannot be encoded for DNS are invalid_url before any
    connection, not a UnicodeError from inside aiohttp's resolver."""
    async with Fetcher(FetchConfig(allow_cidrs=LOOPBACK)) as fetcher:
        with pytest.raises(InvalidUrl) as caught:
            await fetcher.fetch(url)
    assert caught.value.kind == "invalid_url"
    assert url in str(caught.value)
