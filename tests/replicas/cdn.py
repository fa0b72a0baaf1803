"""A Bluesky CDN replica: blobs by did and cid, at the paths ``cdn.bsky.app`` and
``video.bsky.app`` serve them.

- ``GET /img/feed_fullsize/plain/{did}/{cid}@jpeg`` -> the image, ``image/jpeg``
- ``GET /watch/{did, percent-encoded}/{cid}/thumbnail.jpg`` -> a video's thumbnail
- anything else -> 404. ``requests`` lists every path asked for.
"""

from __future__ import annotations

from aiohttp import web

from .server import LoopbackServer

__all__ = ["CdnReplica"]


class CdnReplica(LoopbackServer):
    def __init__(self) -> None:
        self._blobs: dict[tuple[str, str], bytes] = {}
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def put(self, did: str, cid: str, body: bytes) -> None:
        self._blobs[(did, cid)] = body

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/img/feed_fullsize/plain/{did}/{cid}", self._image)
        app.router.add_get("/watch/{did}/{cid}/thumbnail.jpg", self._thumbnail)

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
