"""The labeler's XRPC server: the label log as Bluesky's apps and relays read it (aiohttp).

    GET /xrpc/com.atproto.label.subscribeLabels   WebSocket: every label from a cursor, then live
    GET /xrpc/com.atproto.label.queryLabels       JSON: labels by subject pattern and source
    GET /xrpc/_health                             {"version": ...}
    GET /metrics                                  Prometheus

Errors take XRPC's shape, ``{"error": Name, "message"}``: a malformed parameter is 400
``InvalidRequest``, a method this server does not have 404 ``MethodNotImplemented``.

A subscription frame is two DAG-CBOR items in one binary message, a header then a body:
``{op: 1, t: "#labels"}`` + ``{seq, labels: [label]}`` (one seq per frame), or, for an error,
``{op: -1}`` + ``{error, message}`` after which the server closes (code 1008). A cursor beyond
the log's head is ``FutureCursor``; a cursor that is not a non-negative integer is
``InvalidRequest``, sent the same way, after the upgrade rather than as a 400 before it: a
subscription client reads an error frame as a refusal, while a failed handshake looks like a
network fault that it retries forever.

Each subscriber reads the log at its own pace from its own seq, so the log is the only buffer
and a slow reader delays nobody else. A send waits for the socket to drain (aiohttp's writer
does so past 64 KiB buffered), and a send that cannot complete within ``send_timeout_s`` drops
the subscriber: its connection is aborted and it may come back with the last seq it saw. When the
log closes (the labeler stops, or the app shuts down: it closes the log first), every
subscription ends with close code 1001 (going away), waiting at most a second for each
subscriber's reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import libipld
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import MultiMapping

import modstream
from modstream.errors import BadRequest
from modstream.labeler.log import LabelLog, Sequenced
from modstream.labeler.metrics import LabelerMetrics
from modstream.web.responses import Handler, json_response, metrics_response

__all__ = [
    "DEFAULT_QUERY_LIMIT",
    "MAX_QUERY_LIMIT",
    "Follow",
    "LabelQuery",
    "Refuse",
    "build_app",
    "error_frame",
    "labels_frame",
    "parse_label_query",
    "subscription_plan",
]

SUBSCRIBE_LABELS = "/xrpc/com.atproto.label.subscribeLabels"
QUERY_LABELS = "/xrpc/com.atproto.label.queryLabels"
DEFAULT_QUERY_LIMIT = 50
MAX_QUERY_LIMIT = 250
_WRITER_LIMIT = 64 * 1024  # bytes buffered for a subscriber before a send waits for the socket
_CLOSE_TIMEOUT_S = 1.0  # how long a closing subscription waits for the subscriber's close reply
_REPLAY_BATCH = 500  # labels taken from the log at a time; between batches, others run
_DECIMAL = re.compile(r"[0-9]+")  # int() would also take "+5", " 5", "5_0" and other scripts

logger = logging.getLogger("modstream.labeler")


# -- pure decisions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelQuery:
    uri_patterns: tuple[str, ...]
    sources: tuple[str, ...]
    limit: int
    cursor: int  # a seq: the labels after it


@dataclass(frozen=True, slots=True)
class Follow:
    """Send every label after ``after``, then each new one as it is stored."""

    after: int


@dataclass(frozen=True, slots=True)
class Refuse:
    """Send one error frame and close."""

    error: str  # XRPC's error name: FutureCursor, InvalidRequest
    message: str


def _one(params: MultiMapping[str], name: str) -> str | None:
    values = params.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name} is given {len(values)} times; give it once")
    return values[0] if values else None


def _seq(text: str, name: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise BadRequest(f"{name} is a seq, a non-negative integer, not {text!r}")
    return int(text)


def parse_label_query(params: MultiMapping[str]) -> LabelQuery:
    """queryLabels' parameters, or :class:`BadRequest` saying which one is wrong."""
    patterns = tuple(params.getall("uriPatterns", []))
    if not patterns:
        raise BadRequest("uriPatterns is required: an at:// URI or DID, or a prefix ending in *")
    for pattern in patterns:
        if not pattern or "*" in pattern[:-1]:
            raise BadRequest(
                f"a uriPattern is a full URI or a prefix with * at its end only, not {pattern!r}"
            )
    limit = DEFAULT_QUERY_LIMIT
    if (text := _one(params, "limit")) is not None:
        if not _DECIMAL.fullmatch(text) or not 1 <= int(text) <= MAX_QUERY_LIMIT:
            raise BadRequest(f"limit is an integer from 1 to {MAX_QUERY_LIMIT}, not {text!r}")
        limit = int(text)
    cursor_text = _one(params, "cursor")
    cursor = 0 if cursor_text is None else _seq(cursor_text, "cursor")
    return LabelQuery(patterns, tuple(params.getall("sources", [])), limit, cursor)


def subscription_plan(cursor: str | None, head: int) -> Follow | Refuse:
    """What a subscription with ``cursor`` gets while the log's newest seq is ``head``: live
    labels only (no cursor), a replay from the cursor, or a refusal."""
    if cursor is None:
        return Follow(after=head)
    if not _DECIMAL.fullmatch(cursor):
        return Refuse("InvalidRequest", f"cursor is a seq, a non-negative integer, not {cursor!r}")
    seq = int(cursor)
    if seq > head:
        return Refuse("FutureCursor", f"cursor {seq} is beyond the newest seq, {head}")
    return Follow(after=seq)


def _frame(header: Mapping[str, Any], body: Mapping[str, Any]) -> bytes:
    return bytes(libipld.encode_dag_cbor(header)) + bytes(libipld.encode_dag_cbor(body))


def labels_frame(entry: Sequenced) -> bytes:
    """One ``#labels`` message: the label stored at ``entry.seq``."""
    body = {"seq": entry.seq, "labels": [entry.label.cbor_fields()]}
    return _frame({"op": 1, "t": "#labels"}, body)


def error_frame(error: str, message: str) -> bytes:
    return _frame({"op": -1}, {"error": error, "message": message})


def _error_body(error: str, message: str) -> dict[str, str]:
    return {"error": error, "message": message}


# -- the server ---------------------------------------------------------------------------------


class _Ended(enum.Enum):
    SHUTDOWN = "the log closed"
    STALLED = "the subscriber stopped reading"
    GONE = "the subscriber left"


def build_app(
    log: LabelLog, metrics: LabelerMetrics, *, send_timeout_s: float = 10.0
) -> web.Application:
    """The XRPC routes over ``log``. The app's shutdown closes ``log``, which ends every open
    subscription (aiohttp would otherwise wait for them before stopping)."""
    xrpc = _Xrpc(log, metrics, send_timeout_s)
    app = web.Application(middlewares=[_xrpc_errors])
    app.router.add_get(SUBSCRIBE_LABELS, xrpc.subscribe_labels)
    app.router.add_get(QUERY_LABELS, xrpc.query_labels)
    app.router.add_get("/xrpc/_health", xrpc.health)
    app.router.add_get("/metrics", xrpc.metrics)
    app.on_shutdown.append(xrpc.close_log)
    return app


@web.middleware
async def _xrpc_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return json_response(_error_body("InvalidRequest", exc.message), 400)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        where = f"{request.method} {request.path}"
        if exc.status == 404:
            body = _error_body("MethodNotImplemented", f"{where}: no such XRPC method here")
            return json_response(body, 404)
        name = "InvalidRequest" if exc.status < 500 else "InternalServerError"
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_response(_error_body(name, f"{where}: {exc.reason}"), exc.status, headers)
    except Exception as exc:  # the last resort: every failure gets an XRPC body
        logger.error("unexpected failure on %s %s", request.method, request.path, exc_info=exc)
        message = f"internal error: {type(exc).__name__}"
        return json_response(_error_body("InternalServerError", message), 500)


class _Xrpc:
    def __init__(self, log: LabelLog, metrics: LabelerMetrics, send_timeout_s: float) -> None:
        self._log = log
        self._metrics = metrics
        self._send_timeout_s = send_timeout_s

    async def close_log(self, _app: web.Application) -> None:
        self._log.close()

    async def health(self, _request: web.Request) -> web.Response:
        return json_response({"version": modstream.__version__})

    async def metrics(self, _request: web.Request) -> web.Response:
        return metrics_response(self._metrics.registry)

    async def query_labels(self, request: web.Request) -> web.Response:
        try:
            query = parse_label_query(request.query)
        except BadRequest:
            self._metrics.queries.labels(outcome="error").inc()
            raise
        page = self._log.query(
            query.uri_patterns, query.sources, cursor=query.cursor, limit=query.limit
        )
        self._metrics.queries.labels(outcome="ok").inc()
        body: dict[str, Any] = {"labels": [label.json_fields() for label in page.labels]}
        if page.cursor is not None:
            body["cursor"] = page.cursor
        return json_response(body)

    async def subscribe_labels(self, request: web.Request) -> web.WebSocketResponse:
        # Decided before the upgrade: whatever is stored once the subscriber sees it is live.
        plan = subscription_plan(request.query.get("cursor"), self._log.head)
        ws = web.WebSocketResponse(
            timeout=_CLOSE_TIMEOUT_S,
            writer_limit=_WRITER_LIMIT,
            max_msg_size=64 * 1024,  # subscribers have nothing to say
        )
        await ws.prepare(request)
        if isinstance(plan, Refuse):
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(error_frame(plan.error, plan.message))
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=plan.error.encode())
            return ws
        self._metrics.subscribers.inc()
        try:
            ended = await self._serve(ws, plan.after)
            logger.debug("subscribeLabels ended: %s", ended.value)
            if ended is _Ended.STALLED and request.transport is not None:
                request.transport.abort()  # no close frame: it would wait on the same socket
            elif ended is _Ended.SHUTDOWN:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"the labeler is stopping")
        finally:
            self._metrics.subscribers.dec()
        return ws

    async def _serve(self, ws: web.WebSocketResponse, after: int) -> _Ended:
        """Send labels until the log closes, the subscriber leaves or stops reading. Reading
        runs alongside, or a subscriber's close would go unnoticed while no label comes."""
        sending = asyncio.create_task(self._send_labels(ws, after))
        reading = asyncio.create_task(_read_until_closed(ws))
        try:
            done, _ = await asyncio.wait({sending, reading}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, reading):
                task.cancel()
            await asyncio.gather(sending, reading, return_exceptions=True)
        return sending.result() if sending in done else _Ended.GONE

    async def _send_labels(self, ws: web.WebSocketResponse, after: int) -> _Ended:
        seq = after
        while True:
            await self._log.wait_beyond(seq)
            if self._log.closed:
                return _Ended.SHUTDOWN
            for entry in self._log.since(seq, limit=_REPLAY_BATCH):
                try:
                    async with asyncio.timeout(self._send_timeout_s):
                        await ws.send_bytes(labels_frame(entry))
                except TimeoutError:
                    return _Ended.STALLED
                except ConnectionError:
                    return _Ended.GONE
                seq = entry.seq
                self._metrics.frames.inc()
            await asyncio.sleep(0)  # a long replay yields to the other subscribers


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type is WSMsgType.ERROR:
            return
