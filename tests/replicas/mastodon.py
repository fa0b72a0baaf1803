"""A Mastodon replica: a real HTTP server on loopback speaking Mastodon's streaming and REST APIs.

- ``GET /api/v2/instance`` names the streaming host (``configuration.urls.streaming``, ``ws://``).
- ``GET /api/v1/streaming/public`` (``/public/local``, ``/public/remote``, ``/hashtag?tag=``):
  server-sent events, as Mastodon's streaming server writes them: ``:)`` on connect, a ``:thump``
  heartbeat comment every ``heartbeat_s``, and ``event: update`` / ``data: <status JSON>`` for
  each status published after the subscriber connected (``only_media=true``: statuses with
  attachments only). Mastodon sends no event ids; with ``event_ids=True`` the replica sends
  ``id: <status id>`` and honours ``Last-Event-ID`` on reconnect, as an SSE server may.
- ``GET /api/v1/timelines/public`` and ``/api/v1/timelines/tag/{tag}``: ``min_id`` / ``limit``
  paging (the ``limit`` statuses right after ``min_id``, newest first).
- Every endpoint but the instance document wants ``Authorization: Bearer <token>``; without it,
  or with another token, it answers ``401 {"error": ...}`` like Mastodon 4.2+.
- :meth:`MastodonReplica.drop_after` cuts the stream (TCP closed) after that many events.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from .server import LoopbackServer

__all__ = ["MastodonReplica", "attachment", "status"]


@dataclass(slots=True)
class Request:
    path: str
    query: dict[str, str]
    last_event_id: str | None


@dataclass(slots=True)
class _State:
    statuses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    drop_after: int | None = None
    streams: int = 0


class MastodonReplica(LoopbackServer):
    def __init__(
        self, *, token: str | None = "replica-token", event_ids: bool = False,
        heartbeat_s: float = 0.2,
    ) -> None:  # fmt: skip
        self.token = token
        self.event_ids = event_ids
        self.heartbeat_s = heartbeat_s
        self._state = _State()
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Request]:
        return list(self._state.requests)

    def timeline_requests(self) -> list[Request]:
        return [r for r in self._state.requests if r.path.startswith("/api/v1/timelines/")]

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/instance", self._instance)
        for path in ("public", "public/local", "public/remote", "hashtag"):
            app.router.add_get(f"/api/v1/streaming/{path}", self._stream)
        app.router.add_get("/api/v1/timelines/public", self._timeline)
        app.router.add_get("/api/v1/timelines/tag/{tag}", self._timeline)

    async def publish(self, *statuses: dict[str, Any]) -> None:
        self._state.statuses.extend(statuses)
        await self._notify()

    def drop_after(self, events: int) -> None:
        """Cut the stream (the current one, or else the next) once it has sent ``events``."""
        self._state.drop_after = events

    async def wait_for_streams(self, count: int = 1) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._state.streams >= count)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _record(self, request: web.Request) -> web.Response | None:
        self._state.requests.append(
            Request(request.path, dict(request.query), request.headers.get("Last-Event-ID"))
        )
        if self.token is None:
            return None
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "Error: Missing access token"}, status=401)
        return None

    async def _instance(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(
            {
                "domain": "replica.test",
                "version": "4.3.2",
                "configuration": {"urls": {"streaming": f"ws://127.0.0.1:{self.port}"}},
            }
        )

    async def _timeline(self, request: web.Request) -> web.Response:
        refused = self._record(request)
        if refused is not None:
            return refused
        min_id = int(request.query.get("min_id", "0"))
        limit = min(int(request.query.get("limit", "20")), 40)
        tag = request.match_info.get("tag")
        after = sorted(
            (s for s in self._state.statuses if int(s["id"]) > min_id and _matches(s, tag)),
            key=lambda s: int(s["id"]),
        )[:limit]
        return web.json_response(list(reversed(after)))

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        refused = self._record(request)
        if refused is not None:
            return refused
        tag = request.query.get("tag") if request.path.endswith("/hashtag") else None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b":)\n")
        statuses = self._state.statuses
        resume = request.headers.get("Last-Event-ID")
        if self.event_ids and resume is not None:
            index = next((i for i, s in enumerate(statuses) if int(s["id"]) > int(resume)),
                         len(statuses))  # fmt: skip
        else:
            index = len(statuses)
        self._state.streams += 1
        await self._notify()
        with contextlib.suppress(ConnectionResetError):  # the subscriber went away
            await self._send(request, response, index, tag)
        return response

    async def _send(
        self, request: web.Request, response: web.StreamResponse, index: int, tag: str | None
    ) -> None:
        statuses = self._state.statuses
        sent = 0
        while True:
            while index < len(statuses):
                item = statuses[index]
                index += 1
                if not item["media_attachments"] or not _matches(item, tag):
                    continue
                frame = b"event: update\n"
                if self.event_ids:
                    frame += f"id: {item['id']}\n".encode()
                await response.write(frame + b"data: " + orjson.dumps(item) + b"\n\n")
                sent += 1
                drop_after = self._state.drop_after
                if drop_after is not None and sent >= drop_after:
                    self._state.drop_after = None
                    assert request.transport is not None
                    request.transport.close()
                    return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat_s), self._changed:
                    await self._changed.wait_for(partial(_longer_than, statuses, index))
            if index >= len(statuses):
                await response.write(b":thump\n")


def _longer_than(items: list[dict[str, Any]], length: int) -> bool:
    return len(items) > length


def _matches(item: dict[str, Any], tag: str | None) -> bool:
    return tag is None or tag.lower() in (t["name"] for t in item.get("tags", []))


# -- entity builders -------------------------------------------------------------------------


def attachment(
    attachment_id: str,
    kind: str = "image",
    *,
    url: str | None = None,
    preview_url: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    return {
        "id": attachment_id,
        "type": kind,
        "url": url,
        "preview_url": preview_url,
        "remote_url": None,
        "description": description,
        "blurhash": "UeKUpFxuo~R%0nW;WCnhF6RjaJt757oJodS$",
        "meta": {"original": {"width": 640, "height": 480}},
    }


def status(
    status_id: str,
    *attachments: dict[str, Any],
    sensitive: bool = False,
    spoiler_text: str = "",
    tags: tuple[str, ...] = (),
    acct: str = "alice",
) -> dict[str, Any]:
    return {
        "id": status_id,
        "created_at": "2026-11-22T10:00:00.000Z",
        "uri": f"https://replica.test/users/{acct}/statuses/{status_id}",
        "url": f"https://replica.test/@{acct}/{status_id}",
        "sensitive": sensitive,
        "spoiler_text": spoiler_text,
        "visibility": "public",
        "content": "<p>hello</p>",
        "account": {"id": "1", "username": acct, "acct": acct},
        "media_attachments": list(attachments),
        "tags": [{"name": tag, "url": f"https://replica.test/tags/{tag}"} for tag in tags],
    }
