"""One labeler process: the Kafka side and the XRPC routes on one label log, until stopped."""

from __future__ import annotations

import asyncio
import logging

from modstream.labeler.keys import SigningKey
from modstream.labeler.metrics import LabelerMetrics
from modstream.labeler.service import LabelerService, LabelerSettings
from modstream.web.site import bound_site

__all__ = ["serve_labeler"]

log = logging.getLogger("modstream.labeler")


async def serve_labeler(
    settings: LabelerSettings,
    key: SigningKey,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    bound: asyncio.Future[int] | None = None,
    metrics: LabelerMetrics | None = None,
) -> None:
    """Read the label log back, serve it, and label decisions until ``stop`` is set; ``bound``
    gets the port once the routes answer (port 0 picks a free one)."""
    from modstream.labeler.xrpc import build_app

    async with LabelerService(settings, key, metrics) as service:
        app = build_app(service.log, service.metrics)
        async with bound_site(app, host, port, port_flag="--port") as listening:
            log.info("labeler %s (%s) on http://%s:%d/xrpc, %d labels in the log",
                     settings.labeler_did, key.did_key, host, listening,
                     len(service.log))  # fmt: skip
            if bound is not None and not bound.done():
                bound.set_result(listening)
            await service.run(stop)
    log.info("stopped")
