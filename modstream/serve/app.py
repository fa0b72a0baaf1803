"""``modstream serve``: the HTTP front door to the moderation step (aiohttp).

    POST /v1/score          raw image bytes, multipart field ``image``, or JSON ``{"url": ...}``
    POST /v1/hash           an image's PDQ hash and its match in the hash banks (not scored)
    GET  /v1/hash/{sha256}  a result already known for that content, or 404
    GET  /healthz           the process is up
    GET  /readyz            ready to score: the network is compiled and, when the API runs in a
                            pipeline's process, the broker answers (503 with the reason otherwise)
    GET  /metrics           Prometheus
    GET  /openapi.json      every route and error
    GET|POST /m/lookup, GET /m/raw_lookup, GET|POST /h/hash
                            Meta HMA's known-content lookups, with its shapes (:mod:`.hma`)

Every request goes through the same :class:`~modstream.pipeline.moderate.moderator.Moderator` as the
stream, so concurrent requests share the scorer's batcher and batch together, URLs go through
the same guarded fetcher, and a result has the same fields as a topic record. Errors are JSON
``{"error": {"kind", "message"}}`` with the status from :mod:`modstream.web.statuses`. A body
is read no further than the limit: a ``Content-Length`` above it is refused before reading, and
a chunked body is cut off at the limit.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import BodyPartReader, web

from modstream.digests import is_sha256_hex
from modstream.errors import BadRequest, BodyTooLarge, ModstreamError, Unauthorized
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.moderator import Moderated, Moderator, result_fields
from modstream.serve import hma
from modstream.serve.openapi import openapi_document
from modstream.web.responses import (
    Handler,
    error_response,
    http_error_response,
    internal_error_response,
    json_response,
    metrics_response,
    readiness_response,
)

__all__ = ["Readiness", "ServeConfig", "build_app"]

# Why the process cannot serve yet (None: ready). Called on every /readyz.
Readiness = Callable[[], Awaitable[str | None]]
_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
_CHUNK = 64 * 1024
_HMA_PATHS = ("/m/", "/h/")


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeConfig:
    max_body_bytes: int = 20 * 1024 * 1024
    api_keys: frozenset[str] = frozenset()  # empty: no key needed
    request_budget_s: float = 0.250  # the scorer's batching deadline for an API request


def build_app(
    moderator: Moderator,
    metrics: PipelineMetrics,
    config: ServeConfig,
    ready: Readiness,
) -> web.Application:
    api = _Api(moderator, metrics, config, ready)
    # aiohttp's own limit sits above ours, so our reader (with a typed error) refuses first.
    app = web.Application(
        middlewares=[api.errors, api.authenticate], client_max_size=config.max_body_bytes + 1
    )
    app.router.add_post("/v1/score", api.score)
    app.router.add_post("/v1/hash", api.hash)
    app.router.add_get("/v1/hash/{sha256}", api.by_hash)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/readyz", api.readyz)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/openapi.json", api.openapi)
    app.router.add_get("/m/lookup", api.hma_lookup)
    app.router.add_post("/m/lookup", api.hma_lookup)
    app.router.add_get("/m/raw_lookup", api.hma_raw_lookup)
    app.router.add_get("/h/hash", api.hma_hash)
    app.router.add_post("/h/hash", api.hma_hash)
    return app


class _Api:
    def __init__(
        self,
        moderator: Moderator,
        metrics: PipelineMetrics,
        config: ServeConfig,
        ready: Readiness,
    ) -> None:
        self._moderator = moderator
        self._metrics = metrics
        self._config = config
        self._ready = ready
        self._keys = [key.encode() for key in config.api_keys]

    # -- middlewares ---------------------------------------------------------------------------

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await self._answered(request, handler)
        if request.path.startswith(_HMA_PATHS) and response.status >= 400:
            return _hma_error(response)  # HMA's error shape, for HMA's clients
        return response

    async def _answered(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ModstreamError as exc:
            return error_response(exc)
        except web.HTTPRequestEntityTooLarge:
            return error_response(BodyTooLarge(self._too_large()))
        except web.HTTPException as exc:  # aiohttp's own: 404 for an unknown route, 405, ...
            if exc.status < 400:
                raise
            return http_error_response(request, exc)
        except Exception as exc:  # noqa: BLE001 - the last resort: every failure gets a JSON body
            return internal_error_response(request, exc)

    @web.middleware
    async def authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._keys and request.path not in _OPEN_PATHS:
            given = _presented_key(request)
            # Compare against every key, whatever matches first: no timing hint either way.
            matches = [hmac.compare_digest(given, key) for key in self._keys]
            if not any(matches):
                raise Unauthorized(
                    "a valid API key is required: 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
                )
        return await handler(request)

    # -- routes --------------------------------------------------------------------------------

    async def score(self, request: web.Request) -> web.Response:
        deadline = time.monotonic() + self._config.request_budget_s
        moderated: Moderated
        if request.content_type == "application/json":
            url = await self._url_of(request)
            moderated = await self._moderator.moderate_url(url, deadline=deadline)
        else:
            body = await self._image_of(request)
            moderated = await self._moderator.moderate_bytes(body, deadline=deadline)
        return json_response(result_fields(moderated))

    async def hash(self, request: web.Request) -> web.Response:
        hashed = await self._moderator.hash_bytes(await self._image_of(request))
        return json_response(hashed.fields)

    async def by_hash(self, request: web.Request) -> web.Response:
        digest = request.match_info["sha256"].lower()
        if not is_sha256_hex(digest):
            raise BadRequest("the hash must be 64 hexadecimal characters (a sha256)")
        known = self._moderator.known(digest)
        if known is None:
            return json_response(
                {"error": {"kind": "not_found", "message": "no result for this sha256"}}, 404
            )
        return json_response(result_fields(known))

    async def healthz(self, _request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        return readiness_response(await self._ready())

    async def metrics(self, _request: web.Request) -> web.Response:
        return metrics_response(self._metrics.registry)

    async def openapi(self, _request: web.Request) -> web.Response:
        return json_response(openapi_document(self._config.max_body_bytes, bool(self._keys)))

    # -- HMA's routes (hma.py) -------------------------------------------------------------------

    async def hma_lookup(self, request: web.Request) -> web.Response:
        query = request.query
        banks = hma.parse_banks(query.get("banks"))
        signal_type = query.get("signal_type")
        if request.method == "GET" and not query.get("url"):
            signal = query.get("signal")
            if not signal or not signal_type:
                raise BadRequest("Either url or both signal and signal_type are required")
            bits = hma.parse_signal(signal_type, signal)
            return json_response(hma.by_bank(self._within(bits, banks)))
        if signal_type is not None:
            hma.check_signal_type(signal_type)
        hma.check_types(query.get("types"))
        hashed = await self._moderator.hash_bytes(await self._hma_media(request))
        found = hma.by_bank(self._within(hashed.pdq.bits, banks, quality=hashed.pdq.quality))
        return json_response(found if signal_type is not None else {"pdq": found})

    async def hma_raw_lookup(self, request: web.Request) -> web.Response:
        query = request.query
        signal, signal_type = query.get("signal"), query.get("signal_type")
        if not signal or not signal_type:
            raise BadRequest("signal and signal_type are required")
        bits = hma.parse_signal(signal_type, signal)
        include = hma.true_or_false(query.get("include_distance"), "include_distance")
        matches = self._within(bits, hma.parse_banks(query.get("banks")))
        return json_response(hma.raw_matches(matches, include_distance=include))

    async def hma_hash(self, request: web.Request) -> web.Response:
        hma.check_types(request.query.get("types"))
        hashed = await self._moderator.hash_bytes(await self._hma_media(request))
        return json_response({"pdq": hashed.pdq.hex})

    def _within(
        self, bits: bytes, banks: frozenset[str] | None, *, quality: int | None = None
    ) -> hma.Matches:
        matcher = self._moderator.matcher
        return {} if matcher is None else matcher.within(bits, banks=banks, quality=quality)

    async def _hma_media(self, request: web.Request) -> bytes:
        """The image of an HMA hashing request: ``?url=`` (fetched by the guarded fetcher), or
        the one file of a multipart body, in a field named by its content type."""
        url = request.query.get("url")
        if url:
            content_type = request.query.get("content_type")
            if content_type is not None:
                hma.check_content_type(content_type)
            return await self._moderator.fetch(url)
        if request.method == "GET":
            raise BadRequest("url is required")
        if not request.content_type.startswith("multipart/"):
            raise BadRequest("Missing multipart/form-data file upload")
        reader = await request.multipart()
        body: bytes | None = None
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.filename is None:
                continue  # a plain form field, not a file
            if body is not None:
                raise BadRequest("Only one file allowed per request")
            hma.check_content_type(part.name or "")
            body = await self._read_part(part)
        if body is None:
            raise BadRequest("Missing multipart/form-data file upload")
        return body

    # -- reading requests ----------------------------------------------------------------------

    def _too_large(self) -> str:
        return f"the request body is larger than the limit of {self._config.max_body_bytes} bytes"

    async def _url_of(self, request: web.Request) -> str:
        raw = await self._read(request)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        url = data.get("url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url:
            raise BadRequest('a JSON body must be an object with a "url" string')
        return url

    async def _image_of(self, request: web.Request) -> bytes:
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, BodyPartReader) and part.name == "image":
                    return await self._read_part(part)
            raise BadRequest("the multipart body has no 'image' field")
        return await self._read(request)

    async def _read(self, request: web.Request) -> bytes:
        """The whole body, refusing it unread when Content-Length says it is too large."""
        limit = self._config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise BodyTooLarge(self._too_large())
        body = bytearray()
        async for chunk in request.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(self._too_large())
        return bytes(body)

    async def _read_part(self, part: BodyPartReader) -> bytes:
        limit = self._config.max_body_bytes
        body = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge(self._too_large())
        return bytes(body)


def _hma_error(response: web.StreamResponse) -> web.StreamResponse:
    """``{"error": {kind, message}}`` as HMA answers errors: ``{"message"}`` (and the kind)."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    error = orjson.loads(response.body).get("error")
    if not isinstance(error, dict):
        return response
    headers = {name: response.headers[name] for name in ("Allow", "Retry-After", "WWW-Authenticate")
               if name in response.headers}  # fmt: skip
    return json_response({"message": error["message"], "kind": error["kind"]}, response.status,
                         headers or None)  # fmt: skip


def _presented_key(request: web.Request) -> bytes:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip().encode()
    return request.headers.get("X-API-Key", "").strip().encode()
