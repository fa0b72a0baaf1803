"""JSON responses and typed errors for modstream's HTTP front doors (the API, the review console).

Errors are ``{"error": {"kind", "message"}}`` with the status from :mod:`modstream.web.statuses`,
aiohttp's own answers too: an unknown route is ``not_found`` (404), a method the route does not
take ``method_not_allowed`` (405, with ``Allow``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from modstream.errors import ModstreamError
from modstream.web.statuses import RETRY_AFTER_S, status_for

__all__ = [
    "Handler",
    "error_response",
    "errors_as_json",
    "http_error_response",
    "internal_error_response",
    "json_response",
    "metrics_response",
    "readiness_response",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("modstream.web")


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error_response(error: ModstreamError) -> web.Response:
    status = status_for(error)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="modstream"'}
    return json_response({"error": error.to_dict()}, status, headers)


_HTTP_KINDS = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own error answers (an unknown route, a method a route does not take) in the
    documented error shape instead of its plain-text page."""
    kind = _HTTP_KINDS.get(exc.status, "bad_request" if exc.status < 500 else "internal")
    message = f"{request.method} {request.path}: {exc.reason}"
    headers = None
    if "Allow" in exc.headers:
        headers = {"Allow": exc.headers["Allow"]}
        message += f" (this route takes {exc.headers['Allow']})"
    return json_response({"error": {"kind": kind, "message": message}}, exc.status, headers)


def internal_error_response(request: web.Request, exc: Exception) -> web.Response:
    """The last resort for an exception no code mapped (a bug): logged with its traceback, and
    answered as the typed error ``internal`` (500) rather than aiohttp's plain-text page."""
    log.error("unexpected failure on %s %s", request.method, request.path, exc_info=exc)
    return error_response(ModstreamError(f"internal error: {type(exc).__name__}: {exc}"))


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A typed error raised by a handler becomes its JSON response; so does any other."""
    try:
        return await handler(request)
    except ModstreamError as exc:
        return error_response(exc)
    except web.HTTPException as exc:  # aiohttp's own answers: 404 for an unknown route, 405, ...
        if exc.status < 400:
            raise
        return http_error_response(request, exc)
    except Exception as exc:  # noqa: BLE001 - the last resort: every failure gets a JSON body
        return internal_error_response(request, exc)


def readiness_response(reason: str | None) -> web.Response:
    """``/readyz``: 200 ready, or 503 with why not (and when to ask again)."""
    if reason is None:
        return json_response({"status": "ready"})
    return json_response(
        {"status": "not_ready", "reason": reason}, 503, {"Retry-After": str(RETRY_AFTER_S)}
    )


def metrics_response(registry: CollectorRegistry) -> web.Response:
    """``/metrics``: the registry in Prometheus' text format."""
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
