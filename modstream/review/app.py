"""The review console's HTTP side (aiohttp): one page and a small JSON API.

    GET  /                       the page (plain HTML/CSS/JS from ``static/``)
    GET  /api/v1/queue?limit=N   the next undecided items, oldest first, leased to the caller
    POST /api/v1/decisions       {"id", "label": "nsfw" | "safe" | "skip", "note"?} -> 202
    GET  /api/v1/image/{id}      the item's image, fetched server-side through the guarded fetcher
    GET  /api/v1/stats           items left, decided today (by everyone, by the caller)
    GET  /healthz, /readyz       up; consuming the review topics
    GET  /metrics                Prometheus (the queue, decisions by label)

Every ``/api`` call needs ``Authorization: Bearer <token>`` of a reviewer. Errors are
``{"error": {"kind", "message"}}``: 400 bad body, 401 no reviewer, 404 unknown item, 409 decided.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from modstream.errors import BadRequest
from modstream.review.metrics import ReviewMetrics
from modstream.review.reviewers import Reviewers
from modstream.review.service import LABELS, ReviewService
from modstream.web.responses import (
    Handler,
    errors_as_json,
    json_response,
    metrics_response,
    readiness_response,
)

__all__ = ["build_app"]

MAX_BODY_BYTES = 64 * 1024
MAX_NOTE_CHARS = 2000
MAX_LIMIT = 50
_STATIC = {"review.js": "text/javascript", "review.css": "text/css"}


def build_app(service: ReviewService, reviewers: Reviewers) -> web.Application:
    registry = CollectorRegistry()
    ReviewMetrics(service, registry)
    console = _Console(service, reviewers, registry)
    app = web.Application(
        middlewares=[errors_as_json, console.authenticate], client_max_size=MAX_BODY_BYTES
    )
    app.router.add_get("/", console.page)
    app.router.add_get("/static/{name}", console.static)
    app.router.add_get("/api/v1/queue", console.queue)
    app.router.add_post("/api/v1/decisions", console.decide)
    app.router.add_get("/api/v1/image/{id}", console.image)
    app.router.add_get("/api/v1/stats", console.stats)
    app.router.add_get("/healthz", console.healthz)
    app.router.add_get("/readyz", console.readyz)
    app.router.add_get("/metrics", console.metrics)
    return app


class _Console:
    def __init__(
        self, service: ReviewService, reviewers: Reviewers, registry: CollectorRegistry
    ) -> None:
        self._service = service
        self._reviewers = reviewers
        self._registry = registry

    @web.middleware
    async def authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            self._reviewer(request)  # every API call, before its handler reads anything
        return await handler(request)

    def _reviewer(self, request: web.Request) -> str:
        return self._reviewers.identify(request.headers.get("Authorization"))

    async def page(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=_asset("index.html"), content_type="text/html", charset="utf-8",
            headers=_PAGE_HEADERS,
        )  # fmt: skip

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name), content_type=_STATIC[name], charset="utf-8")

    async def queue(self, request: web.Request) -> web.Response:
        reviewer = self._reviewer(request)
        try:
            limit = int(request.query.get("limit", "10"))
        except ValueError:
            raise BadRequest("limit must be a whole number") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must lie between 1 and {MAX_LIMIT}")
        items = self._service.next_items(reviewer, limit)
        return json_response({"items": items, "stats": self._service.statistics(reviewer)})

    async def decide(self, request: web.Request) -> web.Response:
        reviewer = self._reviewer(request)
        item_id, label, note = _decision(await request.read())
        decided = await self._service.decide(item_id, label, reviewer, note)
        stats = self._service.statistics(reviewer)  # the page's counters, current at once
        return json_response({"decision": decided, "stats": stats}, status=202)

    async def image(self, request: web.Request) -> web.Response:
        image = await self._service.image(request.match_info["id"])
        return web.Response(
            body=image.body,
            headers={
                "Content-Type": image.content_type,
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "Cache-Control": "private, max-age=300",
            },
        )

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(self._service.statistics(self._reviewer(request)))

    async def healthz(self, _request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def metrics(self, _request: web.Request) -> web.Response:
        return metrics_response(self._registry)

    async def readyz(self, _request: web.Request) -> web.Response:
        joined = self._service.joined.is_set()
        return readiness_response(None if joined else "not consuming the review topics yet")


_PAGE_HEADERS = {
    # Only our own script, style and blob: images (the API's bytes, fetched with the token).
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _decision(body: bytes) -> tuple[str, str, str | None]:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest('the body must be an object: {"id": ..., "label": ...}')
    item_id, label, note = data.get("id"), data.get("label"), data.get("note")
    if not isinstance(item_id, str) or not item_id:
        raise BadRequest('"id" must be the item\'s id (a string)')
    if label not in LABELS:
        raise BadRequest(f'"label" must be one of {", ".join(LABELS)}')
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
        raise BadRequest(f'"note" must be a string of at most {MAX_NOTE_CHARS} characters')
    return item_id, str(label), note or None


def _asset(name: str) -> bytes:
    return (resources.files("modstream.review") / "static" / name).read_bytes()
