"""A Jetstream replica: a real websocket server on loopback that speaks Jetstream's wire format.

``GET /subscribe`` upgrades to a websocket and streams JSON text frames, as
``jetstream2.us-east.bsky.network`` does:

- ``wantedCollections`` (repeatable, ``prefix.*`` allowed) filters commit events; identity and
  account events are always sent.
- ``cursor`` (unix microseconds) replays every stored event with ``time_us >= cursor`` and then
  goes live; without it the subscriber sees only events published after it connected.
- :meth:`JetstreamReplica.drop_after` cuts the connection (TCP closed, no close frame) once it
  has sent that many frames.
- An unknown query key or a non-numeric cursor is answered ``400``, like the real server.

Frame builders (:func:`post`, :func:`images`, :func:`record_with_media`, ...) write events in the
shapes Jetstream relays from the atproto firehose.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from .server import LoopbackServer

__all__ = [
    "JetstreamReplica",
    "account",
    "blob",
    "delete",
    "external",
    "images",
    "like",
    "post",
    "record_with_media",
    "video",
]

_KNOWN_QUERY = frozenset(
    {"wantedCollections", "wantedDids", "cursor", "compress", "maxMessageSizeBytes"}
)
_revisions = itertools.count(1)


@dataclass(slots=True)
class _Stored:
    time_us: int
    collection: str | None  # None for identity and account events
    text: str


@dataclass(slots=True)
class Subscription:
    """What one connection asked for (for tests to assert on)."""

    collections: list[str]
    cursor: int | None
    sent: int = 0


@dataclass(slots=True)
class _State:
    events: list[_Stored] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    drop_after: int | None = None


class JetstreamReplica(LoopbackServer):
    def __init__(self) -> None:
        self._state = _State()
        self._published = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._state.subscriptions)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/subscribe", self._subscribe)

    async def publish(self, *frames: dict[str, Any]) -> None:
        """Store frames (each with ``time_us``) and send them to live subscribers."""
        for frame in frames:
            commit = frame.get("commit")
            collection = commit["collection"] if isinstance(commit, dict) else None
            self._state.events.append(
                _Stored(frame["time_us"], collection, orjson.dumps(frame).decode())
            )
        async with self._published:
            self._published.notify_all()

    async def publish_raw(self, text: str, *, time_us: int) -> None:
        """Send a frame as written (a malformed one, say) to every subscriber."""
        self._state.events.append(_Stored(time_us, None, text))
        async with self._published:
            self._published.notify_all()

    async def wait_for_subscribers(self, count: int = 1) -> None:
        """Return once ``count`` connections have subscribed."""
        async with self._published:
            await self._published.wait_for(lambda: len(self._state.subscriptions) >= count)

    def drop_after(self, frames: int) -> None:
        """Cut the connection (the current one, or else the next) once it has sent ``frames``."""
        self._state.drop_after = frames

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        unknown = set(request.query) - _KNOWN_QUERY
        cursor_text = request.query.get("cursor")
        if unknown or (cursor_text is not None and not cursor_text.isdigit()):
            return web.json_response({"error": "BadRequest", "message": "bad query"}, status=400)
        cursor = int(cursor_text) if cursor_text is not None else None
        subscription = Subscription(request.query.getall("wantedCollections", []), cursor)
        # Live from here: a frame published once the subscription shows is sent, however soon
        # after (the sender starts after the handshake, and must not start later than this).
        events = self._state.events
        start = (
            len(events)
            if cursor is None
            else next(
                (i for i, stored in enumerate(events) if stored.time_us >= cursor), len(events)
            )
        )
        self._state.subscriptions.append(subscription)
        async with self._published:
            self._published.notify_all()
        socket = web.WebSocketResponse(heartbeat=None)
        await socket.prepare(request)
        sender = asyncio.create_task(self._send(request, socket, subscription, start))
        try:
            async for _message in socket:  # answers pings and the client's close frame
                pass
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return socket

    async def _send(
        self,
        request: web.Request,
        socket: web.WebSocketResponse,
        subscription: Subscription,
        index: int,
    ) -> None:
        events = self._state.events
        while True:
            while index < len(events):
                stored = events[index]
                index += 1
                if not _wanted(stored.collection, subscription.collections):
                    continue
                await socket.send_str(stored.text)
                subscription.sent += 1
                drop_after = self._state.drop_after
                if drop_after is not None and subscription.sent >= drop_after:
                    self._state.drop_after = None
                    assert request.transport is not None
                    request.transport.close()  # a dropped connection: no close frame
                    return
            async with self._published:
                await self._published.wait_for(partial(_longer_than, events, index))


def _longer_than(events: list[_Stored], length: int) -> bool:
    return len(events) > length


def _wanted(collection: str | None, wanted: list[str]) -> bool:
    if collection is None or not wanted:
        return True
    return any(
        collection.startswith(pattern[:-1]) if pattern.endswith(".*") else collection == pattern
        for pattern in wanted
    )


# -- frame builders --------------------------------------------------------------------------


def blob(cid: str, mime_type: str = "image/jpeg", size: int = 123_456) -> dict[str, Any]:
    return {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime_type, "size": size}


def images(*cids_and_alts: tuple[str, str]) -> dict[str, Any]:
    return {
        "$type": "app.bsky.embed.images",
        "images": [
            {"alt": alt, "image": blob(cid), "aspectRatio": {"width": 4, "height": 3}}
            for cid, alt in cids_and_alts
        ],
    }


def record_with_media(media: dict[str, Any], quoted_uri: str) -> dict[str, Any]:
    return {
        "$type": "app.bsky.embed.recordWithMedia",
        "media": media,
        "record": {
            "$type": "app.bsky.embed.record",
            "record": {"uri": quoted_uri, "cid": "bafyreiquotedpostcidxxxxxxxxxxxxxxxxxxx"},
        },
    }


def external(uri: str, thumb_cid: str | None) -> dict[str, Any]:
    card: dict[str, Any] = {"uri": uri, "title": "a link", "description": "somewhere"}
    if thumb_cid is not None:
        card["thumb"] = blob(thumb_cid)
    return {"$type": "app.bsky.embed.external", "external": card}


def video(cid: str, alt: str = "") -> dict[str, Any]:
    return {"$type": "app.bsky.embed.video", "video": blob(cid, "video/mp4"), "alt": alt}


def post(
    did: str,
    rkey: str,
    time_us: int,
    embed: dict[str, Any] | None = None,
    *,
    self_labels: tuple[str, ...] = (),
    operation: str = "create",
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": "hello",
        "createdAt": "2026-11-22T10:00:00.000Z",
        "langs": ["en"],
    }
    if embed is not None:
        record["embed"] = embed
    if self_labels:
        record["labels"] = {
            "$type": "com.atproto.label.defs#selfLabels",
            "values": [{"val": value} for value in self_labels],
        }
    return {
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": f"3l{next(_revisions):011d}",
            "operation": operation,
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": record,
            "cid": f"bafyreipost{rkey.lower()}",
        },
    }


def delete(did: str, rkey: str, time_us: int) -> dict[str, Any]:
    return {
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {"rev": "3l000", "operation": "delete", "collection": "app.bsky.feed.post",
                   "rkey": rkey},
    }  # fmt: skip


def like(did: str, rkey: str, time_us: int, subject_uri: str) -> dict[str, Any]:
    return {
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": "3l001",
            "operation": "create",
            "collection": "app.bsky.feed.like",
            "rkey": rkey,
            "record": {"$type": "app.bsky.feed.like", "subject": {"uri": subject_uri, "cid": "x"}},
            "cid": "bafyreilike",
        },
    }


def account(did: str, time_us: int) -> dict[str, Any]:
    return {
        "did": did,
        "time_us": time_us,
        "kind": "account",
        "account": {"active": True, "did": did, "seq": 1, "time": "2026-11-22T10:00:00.000Z"},
    }
