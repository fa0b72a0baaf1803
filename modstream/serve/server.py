"""Run the API: start the scorer (compiling in the background), bind, serve until stopped.

The port is bound before the network is compiled, so ``/healthz`` answers at once and
``/readyz`` says 503 until the scorer is ready; a request that comes early waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from modstream.errors import PortInUse
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.fetch.fetcher import Fetcher
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.moderate.policy import PRESETS, Policy
from modstream.pipeline.score.scorer import Scorer, ScorerConfig
from modstream.serve.app import Readiness, ServeConfig, build_app

__all__ = ["ApiListen", "ServerSettings", "api_site", "bound_site", "serve"]

log = logging.getLogger("modstream.serve")


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiListen:
    """Where the API listens and how it answers."""

    host: str = "127.0.0.1"
    port: int = 8080
    config: ServeConfig = field(default_factory=ServeConfig)
    port_flag: str = "--port"  # the option that moves it, for the port-in-use message


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerSettings:
    listen: ApiListen = field(default_factory=ApiListen)
    policy: Policy = field(default_factory=lambda: PRESETS["balanced"])
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)


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

        async def readiness() -> str | None:
            return None if scorer.compiled else "compiling the model"

        listen = settings.listen
        async with api_site(moderator, metrics, listen, ready=readiness) as port:
            if bound is not None and not bound.done():
                bound.set_result(port)
            await scorer.ready()
            log.info("model %s compiled for %s", scorer.model_id, ", ".join(scorer.devices))
            await stop.wait()


@contextlib.asynccontextmanager
async def api_site(
    moderator: Moderator, metrics: PipelineMetrics, listen: ApiListen, *, ready: Readiness
) -> AsyncIterator[int]:
    """The API bound to ``listen`` for as long as the block runs; yields the bound port."""
    app = build_app(moderator, metrics, listen.config, ready=ready)
    async with bound_site(app, listen.host, listen.port, port_flag=listen.port_flag) as port:
        log.info("API on http://%s:%d (policy %s)", listen.host, port, moderator.policy.name)
        yield port


@contextlib.asynccontextmanager
async def bound_site(
    app: web.Application, host: str, port: int, *, port_flag: str
) -> AsyncIterator[int]:
    """``app`` served on ``host:port`` for as long as the block runs; yields the bound port (what
    port 0 became). A port in use is a :class:`PortInUse` naming the flag that moves it."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(
                f"cannot listen on {host}:{port}: the port is in use; choose another with "
                f"{port_flag}"
            ) from None
        yield _port_of(site)
    finally:
        await runner.cleanup()


def _port_of(site: web.TCPSite) -> int:
    server = site._server  # aiohttp keeps the bound socket here; the port is what port 0 became
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0
