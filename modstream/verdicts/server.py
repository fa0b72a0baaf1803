"""One verdict replica: the Kafka side and the lookup routes on one table, until stopped."""

from __future__ import annotations

import asyncio
import logging

from modstream.verdicts.config import VerdictSettings
from modstream.verdicts.metrics import VerdictMetrics
from modstream.verdicts.service import VerdictService
from modstream.web.site import bound_site

__all__ = ["serve_verdicts"]

log = logging.getLogger("modstream.verdicts")


async def serve_verdicts(
    settings: VerdictSettings,
    *,
    host: str,
    port: int,
    stop: asyncio.Event,
    bound: asyncio.Future[int] | None = None,
    metrics: VerdictMetrics | None = None,
) -> None:
    """Answer lookups from the moment the port is bound (``/readyz`` 503 until the table is
    read), then keep the table current until ``stop``; ``bound`` gets the port."""
    from modstream.verdicts.app import build_app

    async with (
        VerdictService(settings, metrics) as service,
        bound_site(build_app(service), host, port, port_flag="--port") as listening,
    ):
        log.info("verdicts on http://%s:%d/v1/verdicts, from %s", host, listening,
                 settings.verdict_topic)  # fmt: skip
        if bound is not None and not bound.done():
            bound.set_result(listening)
        await service.run(stop)
    log.info("stopped")
