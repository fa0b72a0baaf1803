"""The Mastodon stream: server-sent events, gaps filled from the timeline, 401s explained.

One :class:`aiohttp.ClientSession` per source, with the user's token (``MASTODON_ACCESS_TOKEN``)
as ``Authorization: Bearer``. Each connection:

1. finds the streaming host once (``streaming_url``, else ``/api/v2/instance``, else the server);
2. opens the SSE stream (``only_media=true``); a 401 or 403 is a
   :class:`~modstream.errors.SourceUnauthorized` that names the token variable, any other 4xx a
   :class:`~modstream.errors.SourceError`; both stop the run;
3. fills the gap since the last status seen, when there is one: with ``Last-Event-ID`` if the
   server sent event ids (Mastodon's does not), else by paging the matching timeline forward
   with ``min_id`` (at most ``backfill_limit`` statuses) while the new stream buffers;
4. reads ``update`` (and ``status.update``) events until the stream ends, goes quiet for
   ``idle_timeout_s`` (Mastodon sends a ``:thump`` heartbeat every 15 s), or fails.

A restart with a saved position (the highest status id acknowledged) starts at step 3. Statuses
seen twice (the stream and the backfill overlap) are published once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import orjson
from aiohttp.http_exceptions import LineTooLong

from modstream.backoff import Backoff, BackoffPolicy
from modstream.connectors.base import (
    Emission,
    SourceCounters,
    SourceStatistics,
    refusal_for_status,
)
from modstream.connectors.mastodon.endpoints import (
    STREAMS,
    StreamEndpoints,
    streaming_base_from_instance,
)
from modstream.connectors.mastodon.sse import SseDecoder
from modstream.connectors.mastodon.statuses import (
    MalformedStatus,
    images_in_status,
    newer_id,
    read_status,
    status_id,
)
from modstream.connectors.recent import RecentIds
from modstream.errors import SourceError, SourceUnauthorized, SourceUnavailable

__all__ = ["TOKEN_VARIABLE", "MastodonOptions", "MastodonSource"]

log = logging.getLogger("modstream.connector.mastodon")

TOKEN_VARIABLE = "MASTODON_ACCESS_TOKEN"
_STATUS_EVENTS = frozenset({"update", "status.update"})
_PAGE = 40  # Mastodon's largest timeline page


@dataclass(frozen=True, kw_only=True, slots=True)
class MastodonOptions:
    """``--source mastodon``. ``url`` (``--mastodon-url``, the server), ``stream`` (public,
    local, remote or hashtag), ``tag`` (for hashtag), ``streaming_url`` (found from the server
    when empty), ``backfill_limit`` (statuses fetched at most to fill a gap; 0: none),
    ``idle_timeout_s`` (reconnect after this long without a byte), ``max_status_bytes``."""

    url: str = ""
    stream: str = "public"
    tag: str = ""
    streaming_url: str = ""
    backfill_limit: int = 400
    idle_timeout_s: float = 60.0
    max_status_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name, required in (("url", True), ("streaming_url", False)):
            value = getattr(self, name)
            if not value and not required:
                continue
            parts = urllib.parse.urlsplit(value)
            if parts.scheme.lower() not in ("http", "https", "ws", "wss") or not parts.hostname:
                raise ValueError(
                    f"the mastodon source needs {name} as an http(s) URL "
                    f"(--mastodon-url https://mastodon.example), got {value!r}"
                )
        if self.stream not in STREAMS:
            raise ValueError(f"stream must be one of {', '.join(STREAMS)}, got {self.stream!r}")
        if (self.stream == "hashtag") != bool(self.tag):
            raise ValueError("tag goes with stream=hashtag, and stream=hashtag needs a tag")
        if self.backfill_limit < 0 or self.idle_timeout_s <= 0 or self.max_status_bytes <= 0:
            raise ValueError("backfill_limit must not be negative; idle_timeout_s positive")

    @property
    def endpoints(self) -> StreamEndpoints:
        return StreamEndpoints(server=_http(self.url), stream=self.stream, tag=self.tag.lstrip("#"))


class MastodonSource:
    name = "mastodon"

    def __init__(
        self,
        options: MastodonOptions,
        *,
        token: str | None,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self.options = options
        self._endpoints = options.endpoints
        self._token = token
        self._backoff = backoff or BackoffPolicy(initial_s=1.0, max_s=60.0)
        self._server = urllib.parse.urlsplit(options.url).hostname or ""
        self._counters = SourceCounters()
        self._recent = RecentIds()
        self._session: aiohttp.ClientSession | None = None
        self._streaming_base: str | None = None
        self._last_id: str | None = None  # the newest status seen by this process
        self._last_event_id: str | None = None

    @property
    def checkpoint_key(self) -> str:
        stream = self.options.stream if not self.options.tag else f"tag-{self._endpoints.tag}"
        return f"mastodon-{urllib.parse.urlsplit(self.options.url).hostname}-{stream}"

    async def __aenter__(self) -> Self:
        headers = {"User-Agent": "modstream"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._counters.connected = False
        if self._session is not None:
            await self._session.close()
            self._session = None

    def statistics(self) -> SourceStatistics:
        return self._counters.snapshot()

    async def emissions(self, resume_from: str | None) -> AsyncIterator[Emission]:
        session = self._session
        if session is None:
            raise RuntimeError("enter the source (async with) before reading it")
        if resume_from is not None and resume_from.isdigit():
            self._last_id = resume_from
        backoff = Backoff(self._backoff)
        connections = 0
        while True:
            try:
                url, query = self._endpoints.stream_url(await self._streaming_endpoint(session))
                headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
                if self._last_event_id is not None:
                    headers["Last-Event-ID"] = self._last_event_id
                async with session.get(url, params=query, headers=headers) as response:
                    await _check(response, "the stream")
                    if "text/event-stream" not in response.headers.get("Content-Type", ""):
                        raise SourceError(f"mastodon: {url} did not answer with an event stream")
                    connections += 1
                    if connections > 1:
                        self._counters.reconnects += 1
                    self._counters.connected = True
                    log.info("streaming %s from %s", self.options.stream, url)
                    if self._last_event_id is None and self._last_id is not None:
                        async for emission in self._backfill(session, self._last_id):
                            yield emission
                    async for emission in self._stream(response):
                        backoff.reset()
                        yield emission
                    reason = "the stream ended"
            except SourceError as exc:
                if not exc.retriable:
                    raise
                reason = str(exc)
            except (aiohttp.ClientError, OSError, TimeoutError, LineTooLong) as exc:
                reason = str(exc) or type(exc).__name__
            self._counters.connected = False
            delay = backoff.next_delay()
            log.warning("mastodon stream lost (%s); reconnecting in %.1f s after status %s",
                        reason, delay, self._last_id)  # fmt: skip
            await asyncio.sleep(delay)

    async def _streaming_endpoint(self, session: aiohttp.ClientSession) -> str:
        if self._streaming_base is None:
            if self.options.streaming_url:
                self._streaming_base = streaming_base_from_instance(
                    {"configuration": {"urls": {"streaming": self.options.streaming_url}}},
                    self._endpoints.server,
                )
            else:
                self._streaming_base = await self._discover(session)
        return self._streaming_base

    async def _discover(self, session: aiohttp.ClientSession) -> str:
        server = self._endpoints.server
        async with session.get(f"{server}/api/v2/instance") as response:
            if response.status >= 500:
                raise SourceUnavailable(f"{server}/api/v2/instance answered HTTP {response.status}")
            if response.status != 200:  # an older server: streaming on its own host
                return server
            try:
                instance = orjson.loads(await response.read())
            except orjson.JSONDecodeError:
                return server
        return streaming_base_from_instance(instance, server)

    async def _stream(self, response: aiohttp.ClientResponse) -> AsyncIterator[Emission]:
        decoder = SseDecoder()
        limit = self.options.max_status_bytes
        while True:
            async with asyncio.timeout(self.options.idle_timeout_s):
                line = await response.content.readline(max_line_length=limit)
            if not line:
                return
            event = decoder.feed(line.decode("utf-8", errors="replace"))
            if decoder.last_event_id is not None:
                self._last_event_id = decoder.last_event_id
            if event is None or event.name not in _STATUS_EVENTS:
                continue
            try:
                status = read_status(event.data)
            except MalformedStatus as exc:
                self._counters.malformed += 1
                log.debug("skipping a malformed %s event: %s", event.name, exc)
                continue
            yield self._emission(status)

    async def _backfill(
        self, session: aiohttp.ClientSession, since: str
    ) -> AsyncIterator[Emission]:
        """Page the timeline forward from ``since``: the statuses the stream did not deliver."""
        fetched, min_id = 0, since
        while fetched < self.options.backfill_limit:
            want = min(_PAGE, self.options.backfill_limit - fetched)
            url, query = self._endpoints.timeline_url(min_id=min_id, limit=want)
            async with session.get(url, params=query) as response:
                await _check(response, "the timeline")
                page = orjson.loads(await response.read())
            statuses = _statuses(page)
            if not isinstance(page, list) or len(statuses) < len(page):
                self._counters.malformed += 1
            for status in statuses:
                yield self._emission(status)
            fetched += len(statuses)
            if len(statuses) < want:
                log.info("backfilled %d statuses after %s", fetched, since)
                return
            min_id = status_id(statuses[-1])
        log.warning("the gap after status %s is longer than backfill_limit=%d; statuses before "
                    "%s were skipped", since, self.options.backfill_limit, min_id)  # fmt: skip

    def _emission(self, status: dict[str, Any]) -> Emission:
        self._last_id = newer_id(self._last_id, status_id(status))
        found = images_in_status(status, server=self._server, observed_at=time.time())
        events = tuple(event for event in found if self._recent.first_sighting(event.id))
        self._counters.events += len(events)
        return Emission(events, position=self._last_id)


def _statuses(page: object) -> list[dict[str, Any]]:
    """A timeline page's readable statuses, oldest first (Mastodon sends newest first)."""
    readable = [item for item in page if _readable(item)] if isinstance(page, list) else []
    return sorted(readable, key=lambda status: int(status["id"]))


def _readable(item: object) -> bool:
    if not isinstance(item, dict):
        return False
    try:
        status_id(item)
    except MalformedStatus:
        return False
    return True


async def _check(response: aiohttp.ClientResponse, what: str) -> None:
    if response.status == 200:
        return
    detail = (await response.text(errors="replace"))[:200].strip()
    where = f"mastodon: {what} at {response.url.with_query(None)}"
    if response.status in (401, 403):
        raise SourceUnauthorized(
            f"{where} answered HTTP {response.status} ({detail}): set {TOKEN_VARIABLE} to a user "
            "access token with the read:statuses scope (Mastodon requires one since 4.2)"
        )
    raise refusal_for_status(response.status, f"{where} answered HTTP {response.status} ({detail})")


def _http(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme.lower(), parts.scheme.lower())
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
