"""The Jetstream websocket: subscribe, read frames, reconnect with a rewound cursor.

One :class:`aiohttp.ClientSession` per source. Each connection subscribes to
``app.bsky.feed.post`` (``cursor`` set from the last position seen, rewound ``rewind_s``), and
every text frame goes through :func:`.frames.read_frame`. A post's images are one emission whose
position is the highest ``time_us`` seen so far; frames without images still advance the saved
position, at most once a second. A dropped connection, a failed ping or a refused connect is
retried with backoff (counted in ``reconnects``); a 4xx answer to the handshake (a bad URL or
query) is a :class:`~modstream.errors.SourceError` that stops the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Self

import aiohttp

from modstream.backoff import Backoff, BackoffPolicy
from modstream.connectors.base import (
    Emission,
    SourceCounters,
    SourceStatistics,
    refusal_for_status,
)
from modstream.connectors.jetstream.cursor import (
    parse_position,
    resume_cursor,
    subscribe_url,
)
from modstream.connectors.jetstream.frames import (
    POST_COLLECTION,
    FrameReading,
    ImageLinks,
    MalformedFrame,
    read_frame,
)
from modstream.connectors.recent import RecentIds

__all__ = ["DEFAULT_URL", "JetstreamOptions", "JetstreamSource"]

log = logging.getLogger("modstream.connector.jetstream")

DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"


@dataclass(frozen=True, kw_only=True, slots=True)
class JetstreamOptions:
    """``--source jetstream``. ``url`` (``--jetstream-url``), ``image_base_url``
    (``--bsky-image-base-url``), ``rewind_s`` (how far before the last position a reconnect
    starts), ``external_thumbnails`` / ``video_thumbnails`` (score link-card and video
    thumbnails too), ``video_base_url``, ``heartbeat_s`` (websocket ping interval),
    ``max_frame_bytes``."""

    url: str = DEFAULT_URL
    image_base_url: str = "https://cdn.bsky.app"
    video_base_url: str = "https://video.bsky.app"
    external_thumbnails: bool = False
    video_thumbnails: bool = False
    rewind_s: float = 5.0
    heartbeat_s: float = 30.0
    max_frame_bytes: int = 2 * 1024 * 1024

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme.lower() not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"the Jetstream url must be ws:// or wss://, got {self.url!r}")
        query = urllib.parse.parse_qs(parts.query)
        if query.get("compress", ["false"])[-1].lower() == "true":
            raise ValueError("compressed Jetstream frames (compress=true) are not supported")
        for name in ("image_base_url", "video_base_url"):
            base = urllib.parse.urlsplit(getattr(self, name))
            if base.scheme.lower() not in ("http", "https") or not base.hostname:
                raise ValueError(f"{name} must be an http(s) URL, got {getattr(self, name)!r}")
        if self.rewind_s < 0 or self.heartbeat_s <= 0 or self.max_frame_bytes <= 0:
            raise ValueError("rewind_s must not be negative; heartbeat_s, max_frame_bytes positive")

    @property
    def links(self) -> ImageLinks:
        return ImageLinks(
            image_base_url=self.image_base_url,
            video_base_url=self.video_base_url,
            external_thumbnails=self.external_thumbnails,
            video_thumbnails=self.video_thumbnails,
        )


class JetstreamSource:
    name = "jetstream"
    position_interval_s = 1.0  # how often frames without images move the saved position

    def __init__(self, options: JetstreamOptions, *, backoff: BackoffPolicy | None = None) -> None:
        self.options = options
        self._links = options.links
        self._backoff = backoff or BackoffPolicy(initial_s=0.5, max_s=30.0)
        self._counters = SourceCounters()
        self._recent = RecentIds()
        self._session: aiohttp.ClientSession | None = None

    @property
    def checkpoint_key(self) -> str:
        return f"jetstream-{urllib.parse.urlsplit(self.options.url).hostname}"

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._counters.connected = False
        if self._session is not None:
            await self._session.close()
            self._session = None

    def statistics(self) -> SourceStatistics:
        return self._counters.snapshot()

    async def emissions(self, resume_from: str | None) -> AsyncIterator[Emission]:
        if self._session is None:
            raise RuntimeError("enter the source (async with) before reading it")
        high_water = parse_position(resume_from)
        if resume_from is not None and high_water is None:
            log.warning("ignoring the unreadable saved position %r; starting live", resume_from)
        backoff = Backoff(self._backoff)
        connections = 0
        while True:
            cursor = resume_cursor(high_water, self.options.rewind_s)
            url = subscribe_url(self.options.url, (POST_COLLECTION,), cursor)
            reason = "closed by the server"
            try:
                async with self._session.ws_connect(
                    url,
                    heartbeat=self.options.heartbeat_s,
                    max_msg_size=self.options.max_frame_bytes,
                ) as socket:
                    connections += 1
                    if connections > 1:
                        self._counters.reconnects += 1
                    self._counters.connected = True
                    log.info("subscribed to %s (cursor %s)", self.options.url, cursor or "live")
                    last_emitted = time.monotonic()
                    async for message in socket:
                        if message.type is not aiohttp.WSMsgType.TEXT:
                            self._counters.malformed += 1  # binary frames: not requested
                            continue
                        reading = self._read(message.data)
                        if reading is None:
                            continue
                        backoff.reset()
                        high_water = max(high_water or 0, reading.time_us)
                        events = tuple(
                            e for e in reading.events if self._recent.first_sighting(e.id)
                        )
                        now = time.monotonic()
                        if events or now - last_emitted >= self.position_interval_s:
                            self._counters.events += len(events)
                            last_emitted = now
                            yield Emission(events, position=str(high_water))
                    if socket.exception() is not None:
                        reason = str(socket.exception())
            except aiohttp.WSServerHandshakeError as exc:
                refusal = refusal_for_status(
                    exc.status,
                    f"jetstream: {self.options.url} refused "
                    f"the subscription (HTTP {exc.status} {exc.message})",
                )
                if not refusal.retriable:
                    raise refusal from exc
                reason = f"HTTP {exc.status} {exc.message}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self._counters.connected = False
            delay = backoff.next_delay()
            cursor = resume_cursor(high_water, self.options.rewind_s)
            log.warning("jetstream connection lost (%s); reconnecting in %.1f s from cursor %s",
                        reason, delay, cursor)  # fmt: skip
            await asyncio.sleep(delay)

    def _read(self, data: str) -> FrameReading | None:
        try:
            reading = read_frame(data, self._links, observed_at=time.time())
        except MalformedFrame as exc:
            self._counters.malformed += 1
            log.debug("skipping a malformed frame: %s", exc)
            return None
        if reading.unreadable:
            self._counters.malformed += 1
        return reading
