"""A Bluesky CDN replica: blobs by did and cid, at the paths ``cdn.bsky.app`` and
``video.bsky.app`` serve them.

- ``GET /img/feed_fullsize/plain/{did}/{cid}@jpeg`` -> the image, ``image/jpeg``
- ``GET /watch/{did, percent-encoded}/{cid}/thumbnail.jpg`` -> a video's thumbnail
- anything else -> 404. ``requests`` lists every path asked for.
"""

from __future__ import annotations

from typing import Self

from aiohttp import web

__all__ = ["CdnReplica"]


class CdnReplica:
    def __init__(self) -> None:
        self._blobs: dict[tuple[str, str], bytes] = {}
        self._runner: web.AppRunner | None = None
        self.requests: list[str] = []
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def put(self, did: str, cid: str, body: bytes) -> None:
        self._blobs[(did, cid)] = body

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/img/feed_fullsize/plain/{did}/{cid}", self._image)
        app.router.add_get("/watch/{did}/{cid}/thumbnail.jpg", self._thumbnail)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _image(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        cid, suffix, _format = request.match_info["cid"].partition("@")
        return self._blob(request.match_info["did"], cid if suffix else "")

    async def _thumbnail(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return self._blob(request.match_info["did"], request.match_info["cid"])

    def _blob(self, did: str, cid: str) -> web.Response:
        body = self._blobs.get((did, cid))
        if body is None:
            return web.json_response({"error": "NotFound"}, status=404)
        return web.Response(body=body, content_type="image/jpeg")
