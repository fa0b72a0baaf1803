"""The upload webhook's I/O half: an aiohttp server whose requests become emissions.

``POST /v1/events``: refuse a body over ``max-body-bytes`` before reading past the limit ->
authenticate the raw body (:mod:`.auth`) -> decode JSON or NDJSON and parse it (:mod:`.payloads`)
-> put one
``Emission(events, position=None, receipt)`` on a bounded queue -> wait for the receipt, which the
publisher resolves once Kafka acknowledged every event. Only then does the caller get its ``202``;
a full queue or a receipt not resolved within ``ack-timeout-s`` is a ``503`` with
``Retry-After``, and the caller's retry is harmless (same ids). ``GET /healthz`` answers ``200``.

Every error body is ``{"error": {"kind", "message"}}``: ``bad_json`` 400, ``unauthorized`` 401,
``not_found`` 404, ``method_not_allowed`` 405, ``too_large`` 413, ``invalid_event`` 422,
``unavailable`` 503. The webhook has no stream position: its emissions carry none, and a caller
that was not answered ``202`` sends again.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Self

from aiohttp import web

from modstream.connectors.base import Emission, SourceCounters, SourceStatistics
from modstream.connectors.webhook.auth import SIGNATURE_HEADER, is_authorized
from modstream.connectors.webhook.payloads import BadJson, InvalidPayload, ParsedPayload, parse_body
from modstream.connectors.webhook.responses import (
    accepted,
    error,
    json_errors,
    json_response,
    read_at_most,
    unavailable,
)
from modstream.errors import ConfigError, PortInUse

__all__ = ["WebhookOptions", "WebhookSource"]

log = logging.getLogger("modstream.connector")

_HOW_TO_AUTHENTICATE = (
    f"send 'Authorization: Bearer <secret>' or '{SIGNATURE_HEADER}: sha256=<hex hmac of the body>'"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class WebhookOptions:
    """``--source webhook``; the shared secret comes from ``MODSTREAM_WEBHOOK_SECRET``."""

    host: str = "127.0.0.1"
    port: int = 8090  # 0: any free port (read it back from ``WebhookSource.port``)
    object_base_url: str | None = None  # S3/MinIO notifications: ``{this}/{bucket}/{key}``
    max_body_bytes: int = 1024 * 1024
    ack_timeout_s: float = 10.0
    queue_size: int = 1024  # events waiting between the HTTP handlers and the publisher

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if self.max_body_bytes <= 0 or self.queue_size <= 0 or self.ack_timeout_s <= 0:
            raise ValueError("max-body-bytes, queue-size and ack-timeout-s must be positive")
        base = self.object_base_url
        if base is not None and not base.startswith(("http://", "https://")):
            raise ValueError(f"--object-base-url must be an http(s) URL, not {base!r}")


class WebhookSource:
    name = "webhook"

    def __init__(self, options: WebhookOptions, *, secret: str) -> None:
        if not secret:
            raise ValueError("the webhook needs a non-empty shared secret")
        self.options = options
        self._secret = secret.encode()
        self._counters = SourceCounters()
        # Emissions hold one event or more, so ``queue_size`` emissions never overflow it.
        self._queue: asyncio.Queue[Emission] = asyncio.Queue(maxsize=options.queue_size)
        self._queued_events = 0
        self._waiting: set[asyncio.Future[None]] = set()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def __repr__(self) -> str:  # never the secret
        return f"<WebhookSource {self.options.host}:{self._port or self.options.port}>"

    @property
    def checkpoint_key(self) -> str:
        return "webhook"  # nothing is ever saved under it: emissions carry no position

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the webhook is not bound yet")
        return self._port

    @property
    def queued_events(self) -> int:
        """Events waiting for the publisher to take them (at most ``queue_size``)."""
        return self._queued_events

    @property
    def url(self) -> str:
        host = self.options.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[json_errors])
        app.router.add_post("/v1/events", self._post_events)
        app.router.add_get("/healthz", self._healthz)
        # lingering_time=0: a refused body is not drained after the answer; the connection closes.
        runner = web.AppRunner(app, access_log=None, lingering_time=0.0, shutdown_timeout=2.0)
        await runner.setup()
        host, port = self.options.host, self.options.port
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"cannot serve the upload webhook on {host}:{port}: the port is in use "
                    "(another modstream?); choose another with --webhook-port"
                ) from None
            raise ConfigError(
                f"cannot serve the upload webhook on {host}:{port}: {exc.strerror or exc}; "
                "check --webhook-host"
            ) from None
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._counters.connected = True
        log.info("upload webhook listening on %s/v1/events", self.url)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        runner, self._runner = self._runner, None
        self._counters.connected = False
        if runner is None:
            return
        for receipt in self._waiting:  # their callers are answered 503 and will retry
            receipt.cancel()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queued_events = 0
        await runner.cleanup()

    def statistics(self) -> SourceStatistics:
        return self._counters.snapshot()

    async def emissions(self, resume_from: str | None = None) -> AsyncIterator[Emission]:
        while True:
            emission = await self._queue.get()
            self._queued_events -= len(emission.events)
            if emission.receipt is not None and emission.receipt.done():
                continue  # its caller timed out, was answered 503, and sends it again
            self._counters.events += len(emission.events)
            yield emission

    async def _healthz(self, request: web.Request) -> web.Response:
        return json_response(200, {"status": "ok"})

    async def _post_events(self, request: web.Request) -> web.Response:
        limit = self.options.max_body_bytes
        too_large = f"the body is larger than max-body-bytes ({limit} bytes)"
        if request.content_length is not None and request.content_length > limit:
            return self._malformed(413, "too_large", too_large)
        body = await read_at_most(request.content, limit)
        if body is None:
            return self._malformed(413, "too_large", too_large)
        headers = request.headers
        if not is_authorized(
            self._secret,
            body,
            authorization=headers.get("Authorization"),
            signature=headers.get(SIGNATURE_HEADER),
        ):
            return error(401, "unauthorized", _HOW_TO_AUTHENTICATE, {"WWW-Authenticate": "Bearer"})
        try:
            parsed = parse_body(
                body, content_type=request.content_type,
                object_base_url=self.options.object_base_url, now=time.time(),
            )  # fmt: skip
        except BadJson as exc:
            return self._malformed(400, "bad_json", str(exc))
        except InvalidPayload as exc:
            return self._malformed(422, "invalid_event", str(exc))
        if not parsed.events:
            return accepted(parsed)
        return await self._publish(parsed)

    async def _publish(self, parsed: ParsedPayload) -> web.Response:
        count, capacity = len(parsed.events), self.options.queue_size
        if count > capacity:
            message = f"{count} events in one request; at most {capacity} (queue-size)"
            return self._malformed(413, "too_large", message)
        if self._runner is None:
            return unavailable("the webhook is stopping")
        if self._queued_events + count > capacity or self._queue.full():
            return unavailable(f"the webhook's queue is full ({self._queued_events} events)")
        receipt: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Emission(parsed.events, position=None, receipt=receipt))
        self._queued_events += count
        self._waiting.add(receipt)
        try:
            await asyncio.wait({receipt}, timeout=self.options.ack_timeout_s)
        finally:
            self._waiting.discard(receipt)
        if not receipt.done():
            receipt.cancel()
            timeout = self.options.ack_timeout_s
            return unavailable(f"the events were not acknowledged within {timeout:g} s")
        if receipt.cancelled() or receipt.exception() is not None:
            return unavailable("the events could not be published (the connector is stopping)")
        return accepted(parsed)

    def _malformed(self, status: int, kind: str, message: str) -> web.Response:
        self._counters.malformed += 1
        response = error(status, kind, message)
        if status == 413:
            response.force_close()  # the rest of the body is never read
        return response
