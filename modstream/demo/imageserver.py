"""A loopback HTTP server for the demo and the tests: the bundled samples plus hostile endpoints.

``/img/<name>``         a bundled sample image, with its real content type; ``?v=<tag>`` makes the
                        bytes unique (a JPEG comment or a PNG text chunk) with the same pixels,
                        so a stream of distinct uploads can be simulated from a few samples
``/bad/html``           an HTML page served as ``image/jpeg``
``/bad/truncated.jpg``  the first half of a JPEG
``/bad/missing.jpg``    404
``/bad/metadata``       a redirect to the cloud metadata address 169.254.169.254
``/bad/huge``           an endless body (cut off by the fetcher's byte limit)
``/bad/slow``           headers, then a trickle slower than any sane timeout
"""

from __future__ import annotations

import asyncio
import importlib.resources
import mimetypes
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from aiohttp import web

HOSTILE_PATHS = (
    "/bad/html",
    "/bad/truncated.jpg",
    "/bad/missing.jpg",
    "/bad/metadata",
)


def sample_images() -> dict[str, bytes]:
    folder = importlib.resources.files("modstream").joinpath("samples")
    images: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.name.endswith((".jpg", ".png")):
            images[entry.name] = entry.read_bytes()
    return dict(sorted(images.items()))


@dataclass(frozen=True, slots=True)
class ServedImages:
    base_url: str
    names: tuple[str, ...]

    def image_urls(self) -> list[str]:
        return [f"{self.base_url}/img/{name}" for name in self.names]

    def hostile_urls(self) -> list[str]:
        return [f"{self.base_url}{path}" for path in HOSTILE_PATHS]


def with_tag(image: bytes, tag: bytes) -> bytes:
    """The same picture with different bytes: a JPEG COM segment or a PNG tEXt chunk."""
    if image.startswith(b"\xff\xd8"):
        return image[:2] + b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag + image[2:]
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        header_end = 8 + 4 + 4 + 13 + 4  # signature, then the IHDR chunk
        data = b"modstream\x00" + tag
        chunk = len(data).to_bytes(4, "big") + b"tEXt" + data
        crc = zlib.crc32(b"tEXt" + data).to_bytes(4, "big")
        return image[:header_end] + chunk + crc + image[header_end:]
    return image


def build_app(images: dict[str, bytes]) -> web.Application:
    first_jpeg = next((body for name, body in images.items() if name.endswith(".jpg")), b"")

    async def image(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = images.get(name)
        if body is None:
            raise web.HTTPNotFound()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        tag = request.query.get("v")
        if tag:
            body = with_tag(body, tag.encode()[:200])
        return web.Response(body=body, content_type=content_type)

    async def html(_request: web.Request) -> web.Response:
        body = b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>"
        return web.Response(body=body, headers={"Content-Type": "image/jpeg"})

    async def truncated(_request: web.Request) -> web.Response:
        return web.Response(body=first_jpeg[: len(first_jpeg) // 2], content_type="image/jpeg")

    async def missing(_request: web.Request) -> web.Response:
        raise web.HTTPNotFound()

    async def metadata(_request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        await response.prepare(request)
        chunk = b"\xff" * 65536
        for _ in range(100_000):  # ~6.5 GB at most; the client hangs up long before
            await response.write(chunk)
        return response

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        await response.prepare(request)
        for _ in range(600):
            await response.write(b"\xff")
            await asyncio.sleep(1.0)
        return response

    app = web.Application()
    app.router.add_get("/img/{name}", image)
    app.router.add_get("/bad/html", html)
    app.router.add_get("/bad/truncated.jpg", truncated)
    app.router.add_get("/bad/missing.jpg", missing)
    app.router.add_get("/bad/metadata", metadata)
    app.router.add_get("/bad/huge", huge)
    app.router.add_get("/bad/slow", slow)
    return app


class ImageServer:
    """``async with ImageServer() as server``: serves on 127.0.0.1 at a free port."""

    def __init__(self, images: dict[str, bytes] | None = None, *, root: Path | None = None) -> None:
        if images is None and root is not None:
            images = {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}
        self.images = images if images is not None else sample_images()
        self._runner = web.AppRunner(build_app(self.images), access_log=None, shutdown_timeout=0.5)
        self.served: ServedImages | None = None

    async def __aenter__(self) -> Self:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = self._runner.addresses
        port = sockets[0][1]
        self.served = ServedImages(f"http://127.0.0.1:{port}", tuple(self.images))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._runner.cleanup()
