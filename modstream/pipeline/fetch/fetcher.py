"""Fetch image bytes over HTTP(S) without trusting the URL, the server, or the body.

* pooled connections with a per-host cap (``aiohttp.TCPConnector``);
* one total deadline for the whole fetch, redirects and retries included, a connect timeout, and
  a response timeout per request;
* a retriable failure (no response in time, a refused connection: the error class's
  ``retriable``) is tried again with backoff, a bounded number of times within the deadline
  (:func:`modstream.backoff.retry`); the result or the error carries ``attempts``;
* the body is cut off while streaming once it passes ``max_bytes`` (after any gzip decoding, so a
  compressed bomb is cut too);
* redirects are followed by hand, at most ``max_redirects``, and every hop is checked again;
* ``file:`` URLs only below an allowed root (:mod:`.files`), off by default;
* SSRF guard: only http(s) on the network; literal IPs are checked before connecting and host
  names when they resolve (:class:`GuardedResolver`), against
  :class:`~modstream.pipeline.fetch.addresses.AddressPolicy`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Self

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from modstream.backoff import Backoff, is_retriable, retry
from modstream.errors import (
    BlockedAddress,
    BodyTooLarge,
    ConnectFailed,
    FetchError,
    FetchTimeout,
    HttpStatusError,
    InvalidUrl,
    TooManyRedirects,
)
from modstream.pipeline.fetch.addresses import AddressPolicy
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.fetch.files import is_file_url, read_file_url

__all__ = ["FetchConfig", "Fetched", "Fetcher", "GuardedResolver"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    url: str
    status: int
    content_type: str
    fetch_s: float
    attempts: int = 1


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's threaded resolver, then refuses hosts that map to blocked addresses.

    aiohttp connects to exactly the addresses returned here, so a DNS answer that changes between
    check and connect (rebinding) cannot slip through.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            self._policy.check(result["host"], host=host)
        return results

    async def close(self) -> None:
        await self._inner.close()


class Fetcher:
    """An HTTP client session for untrusted image URLs. Use ``async with Fetcher(config)``."""

    def __init__(self, config: FetchConfig | None = None) -> None:
        self.config = config or FetchConfig()
        self._policy = AddressPolicy(self.config.allow_cidrs)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.config.pool_limit,
                limit_per_host=self.config.per_host_limit,
                resolver=GuardedResolver(self._policy),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, connect=self.config.connect_timeout_s),
                headers={"User-Agent": self.config.user_agent, "Accept": "image/*, video/*;q=0.8"},
                auto_decompress=True,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await asyncio.shield(session.close())

    async def fetch(self, url: str) -> Fetched:
        """Return the body at ``url``; raise a :class:`~modstream.errors.FetchError` otherwise."""
        if is_file_url(url):
            return await self._read_file(url)
        session = self._ensure_session()
        config = self.config
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        deadline = loop.time() + config.total_timeout_s
        attempts = 0

        async def attempt() -> Fetched:
            nonlocal attempts
            attempts += 1
            return await self._follow(session, url, started)

        try:
            async with asyncio.timeout_at(deadline):
                fetched = await retry(
                    attempt,
                    retriable=is_retriable,
                    backoff=Backoff(config.retry),
                    max_attempts=config.max_attempts,
                    deadline=deadline,
                    clock=loop.time,
                )
        except TimeoutError:
            error = FetchTimeout(
                f"no complete response from {_host_of(url)} within "
                f"{config.total_timeout_s:g} s" + _tries(attempts)
            )
            error.attempts = attempts
            raise error from None
        except FetchError as exc:
            exc.attempts = attempts
            if attempts > 1:
                exc.message += _tries(attempts)
                exc.args = (exc.message,)
            raise
        return dataclasses.replace(fetched, attempts=attempts)

    async def _follow(self, session: aiohttp.ClientSession, url: str, started: float) -> Fetched:
        current = self._checked_url(url)
        for _hop in range(self.config.max_redirects + 1):
            try:
                async with await self._request(session, current) as response:
                    if response.status in _REDIRECTS and "Location" in response.headers:
                        location = response.headers["Location"]
                        current = self._checked_url(location, base=response.url)
                        continue
                    if response.status >= 400:
                        raise HttpStatusError(
                            f"{current.host} answered HTTP {response.status} {response.reason}",
                            status=response.status,
                        )
                    body = await self._read_capped(response)
                    return Fetched(
                        body=body,
                        url=str(current),
                        status=response.status,
                        content_type=response.headers.get("Content-Type", ""),
                        fetch_s=time.perf_counter() - started,
                    )
            except (FetchError, BlockedAddress):
                raise
            except aiohttp.ClientConnectorDNSError as exc:
                raise ConnectFailed(f"cannot resolve {current.host}: {exc.os_error}") from exc
            except aiohttp.ClientConnectorError as exc:
                raise ConnectFailed(f"cannot connect to {current.host}: {exc.os_error}") from exc
            except aiohttp.InvalidURL as exc:
                raise InvalidUrl(f"invalid URL {str(current)!r}: {exc}") from exc
            except aiohttp.ClientError as exc:
                raise FetchError(f"fetching from {current.host} failed: {_reason(exc)}") from exc
        raise TooManyRedirects(
            f"more than {self.config.max_redirects} redirects starting at {_host_of(url)}"
        )

    async def _request(self, session: aiohttp.ClientSession, url: URL) -> aiohttp.ClientResponse:
        """Send one request; a server that has not answered within ``response_timeout_s`` is
        a retriable :class:`FetchTimeout`."""
        timeout = self.config.response_timeout
        try:
            async with asyncio.timeout(timeout):
                return await session.get(url, allow_redirects=False)
        except TimeoutError:
            raise FetchTimeout(f"{url.host} sent no response within {timeout:g} s") from None

    async def _read_file(self, url: str) -> Fetched:
        config = self.config
        body, seconds = await asyncio.to_thread(
            read_file_url, url, config.file_root, config.max_bytes
        )
        return Fetched(body=body, url=url, status=200, content_type="", fetch_s=seconds)

    def _checked_url(self, raw: str, *, base: URL | None = None) -> URL:
        """``raw`` parsed (relative to ``base``, the URL that redirected to it) and checked."""
        try:
            url = URL(raw) if base is None else base.join(URL(raw))
            host = url.host  # decodes punycode, which fails on a label such as "xn--zz"
            if host and url.raw_host and not _is_ip_literal(host):
                # As the resolver will encode it: an empty label ("a..b") or one longer than 63
                # characters fails here rather than inside aiohttp.
                url.raw_host.encode("idna")
        except (ValueError, TypeError) as exc:  # UnicodeError is a ValueError
            where = "" if base is None else f" (a redirect from {base.host})"
            raise InvalidUrl(f"invalid URL {raw!r}{where}: {exc}") from exc
        if url.scheme not in ("http", "https"):
            raise InvalidUrl(f"only http and https URLs are fetched, not {url.scheme or 'none'!r}")
        if not host:
            raise InvalidUrl(f"the URL {raw!r} has no host")
        if _is_ip_literal(host):
            # aiohttp does not resolve literal addresses, so they are checked here.
            self._policy.check(host, host=host)
        return url

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.config.max_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            raise BodyTooLarge(
                f"the server declares {declared} bytes, more than the {limit}-byte limit"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the body passed the {limit}-byte limit; download stopped")
            chunks.append(chunk)
        return b"".join(chunks)


def _reason(exc: aiohttp.ClientError) -> str:
    """What went wrong, in words: the repr of aiohttp's errors repeats our request headers."""
    if isinstance(exc, aiohttp.ClientResponseError):  # a status line or header that is not HTTP
        # aiohttp's parser message spans lines, with a caret under the offending byte.
        lines = (line.strip() for line in exc.message.splitlines())
        said = " ".join(line for line in lines if line not in ("", "^"))
        return f"the response is not valid HTTP: {said}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before the response was complete"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the body is broken: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _tries(attempts: int) -> str:
    return f" ({attempts} attempts)" if attempts > 1 else ""


def _host_of(url: str) -> str:
    try:
        return URL(url).host or url
    except (ValueError, TypeError):
        return url
