"""Run the API: start the scorer (compiling in the background), bind, serve until stopped.

The port is bound before the network is compiled, so ``/healthz`` answers at once and
``/readyz`` says 503 until the scorer is ready; a request that comes early waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.moderate.step import ModerationSettings, open_moderator
from modstream.serve.app import Readiness, ServeConfig, build_app
from modstream.web.site import bound_site

__all__ = ["Alongside", "ApiListen", "ServerSettings", "api_site", "serve"]

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
    moderation: ModerationSettings = field(
        default_factory=lambda: ModerationSettings(fetch=FetchConfig(total_timeout_s=10.0))
    )


# Something the server runs beside its moderator, entered before the port is bound: the command
# that follows a bank topic (the server itself knows no broker) passes it.
Alongside = Callable[[Moderator], contextlib.AbstractAsyncContextManager[object]]


async def serve(
    settings: ServerSettings,
    stop: asyncio.Event,
    bound: asyncio.Future[int] | None = None,
    *,
    alongside: Alongside | None = None,
) -> None:
    """Serve until ``stop`` is set; ``bound`` gets the port once listening (useful with port 0);
    ``alongside``: entered with the moderator before the port is bound, left after."""
    metrics = PipelineMetrics()
    async with contextlib.AsyncExitStack() as stack:
        moderator = await stack.enter_async_context(
            open_moderator(settings.moderation, metrics=metrics, wait_compiled=False)
        )
        if alongside is not None:
            await stack.enter_async_context(alongside(moderator))
        scorer = moderator.scorer

        async def readiness() -> str | None:
            return None if scorer.compiled else "compiling the model"

        async with api_site(moderator, metrics, settings.listen, ready=readiness) as port:
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
