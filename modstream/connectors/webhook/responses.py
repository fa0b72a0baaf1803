"""The upload webhook's HTTP vocabulary: JSON bodies, error answers and a capped body read.

Every error is ``{"error": {"kind", "message"}}``, including aiohttp's own 404 and 405 (turned
into JSON by :func:`json_errors`); a ``503`` says when to retry (``Retry-After``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import StreamReader, web

from modstream.connectors.webhook.payloads import ParsedPayload

__all__ = ["accepted", "error", "json_errors", "json_response", "read_at_most", "unavailable"]

RETRY_AFTER_S = 1
_STATUS_KINDS = {404: "not_found", 405: "method_not_allowed"}


async def read_at_most(content: StreamReader, limit: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it exceeds ``limit`` (reading ``limit + 1`` bytes)."""
    body = bytearray()
    while len(body) <= limit:
        chunk = await content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    return None


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = _STATUS_KINDS.get(exc.status, "http_error")
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error(exc.status, kind, f"{request.method} {request.path}: {exc.reason}", allow)


def accepted(parsed: ParsedPayload) -> web.Response:
    ids = [event.id for event in parsed.events]
    return json_response(202, {"accepted": len(ids), "ignored": parsed.ignored, "ids": ids})


def unavailable(message: str) -> web.Response:
    retry = {"Retry-After": str(RETRY_AFTER_S)}
    return error(503, "unavailable", f"{message}; retry", retry)


def error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(status, {"error": {"kind": kind, "message": message}}, headers)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )
