"""Run the API: start the scorer (compiling in the background), bind, serve until stopped.

The port is bound before the network is compiled, so ``/healthz`` answers at once and
``/readyz`` says 503 until the scorer is ready; a request that comes early waits for it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
from dataclasses import dataclass, field

from aiohttp import web

from modstream.errors import PortInUse
from modstream.pipeline.cache import CacheConfig
from modstream.pipeline.fetch import Fetcher
from modstream.pipeline.fetch_config import FetchConfig
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderation import Moderator
from modstream.pipeline.policy import PRESETS, Policy
from modstream.pipeline.scorer import Scorer, ScorerConfig
from modstream.serve.app import ServeConfig, build_app

__all__ = ["ServerSettings", "serve"]

log = logging.getLogger("modstream.serve")


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    policy: Policy = field(default_factory=lambda: PRESETS["balanced"])
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    api: ServeConfig = field(default_factory=ServeConfig)


async def serve(
    settings: ServerSettings,
    stop: asyncio.Event | None = None,
    bound: asyncio.Future[int] | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None); ``bound`` gets
    the port once listening (useful with port 0)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    metrics = PipelineMetrics()
    async with (
        await Scorer.start(settings.scorer, wait=False) as scorer,
        Fetcher(settings.fetch) as fetcher,
    ):
        metrics.devices.track(scorer.device_statistics)
        moderator = Moderator(
            scorer, settings.policy, fetcher=fetcher, cache=settings.cache, metrics=metrics
        )
        app = build_app(moderator, metrics, settings.api, ready=lambda: scorer.compiled)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.host, settings.port)
            try:
                await site.start()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise PortInUse(
                    f"cannot serve on {settings.host}:{settings.port}: the port is in use; "
                    "choose another with --port"
                ) from None
            port = _port_of(site)
            log.info("serving on http://%s:%d (policy %s)", settings.host, port,
                     settings.policy.name)  # fmt: skip
            if bound is not None and not bound.done():
                bound.set_result(port)
            await scorer.ready()
            log.info("model %s compiled for %s", scorer.model_id, ", ".join(scorer.devices))
            await stop.wait()
        finally:
            await runner.cleanup()


def _port_of(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the bound socket here; the port is what port 0 became
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0
