"""The one way to build the moderation step: ``async with open_moderator(settings) as moderator``.

    scorer (compiling on a thread) + guarded fetcher + policy + caches + hash banks -> Moderator

Every front door builds it here — the stream (``modstream run`` and the demo), the HTTP API
(``modstream serve``, and ``run --serve-port`` on the stream's own moderator), ``modstream
score`` and ``modstream eval`` — so none can assemble it differently. Shutdown runs the other
way round: the bank file watch stops, the fetcher closes, then the scorer drains and releases
its devices. Hash banks are read and indexed before the moderator is handed out: a bad bank file
stops start-up (:class:`~modstream.errors.InvalidBank`), and with a bank that tries rotations the
scorer hashes every image's 7 rotations and mirrors too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from modstream.errors import ConfigError
from modstream.models.pdq import PdqHashing
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.match.banks import BankSettings
from modstream.pipeline.match.files import BankFileWatch, load_bank_files
from modstream.pipeline.match.flood import FloodSettings
from modstream.pipeline.match.matcher import Matcher
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.moderate.policy import PRESETS, Policy
from modstream.pipeline.score.scorer import Scorer, ScorerConfig

__all__ = ["ModerationSettings", "open_moderator"]

log = logging.getLogger("modstream.moderation")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModerationSettings:
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    # None: content only (files, uploads); no HTTP client is made and aiohttp is not imported.
    fetch: FetchConfig | None = field(default_factory=FetchConfig)
    policy: Policy = field(default_factory=lambda: PRESETS["balanced"])
    cache: CacheConfig = field(default_factory=CacheConfig)
    # Hash banks (pipeline/match): files read now and reloaded when they change, and/or banks
    # whose entries arrive while running (the stream's bank topic: live_banks).
    banks: tuple[BankSettings, ...] = ()
    live_banks: bool = False
    bank_reload_s: float = 2.0
    flood: FloodSettings = field(default_factory=FloodSettings)


@contextlib.asynccontextmanager
async def open_moderator(
    settings: ModerationSettings,
    *,
    metrics: PipelineMetrics | None = None,
    wait_compiled: bool = True,
) -> AsyncIterator[Moderator]:
    """The moderation step for as long as the block runs.

    ``wait_compiled=False`` enters at once while the network compiles on a thread: the first
    images decode meanwhile and wait for it only before inference (a batch job, or a server that
    binds its port first and says 503 on ``/readyz`` until :attr:`Scorer.compiled`).
    """
    async with contextlib.AsyncExitStack() as stack:
        matcher = None
        scorer_config = settings.scorer
        if settings.banks or settings.live_banks:
            if scorer_config.pdq is PdqHashing.OFF:
                raise ConfigError("hash banks match PDQ hashes: they cannot be used with --pdq off")
            matcher = Matcher(settings.banks)
            states = await load_bank_files(matcher)
            if matcher.rotations and scorer_config.pdq is PdqHashing.PLAIN:
                scorer_config = dataclasses.replace(scorer_config, pdq=PdqHashing.DIHEDRAL)
            watch = BankFileWatch(matcher, states, interval_s=settings.bank_reload_s)
            task = asyncio.create_task(watch.run(), name="modstream-bank-files")
            stack.push_async_callback(_cancelled, task)
        scorer = await stack.enter_async_context(
            await Scorer.start(scorer_config, wait=wait_compiled)
        )
        if wait_compiled:
            log.info("model %s compiled for %s", scorer.model_id, ", ".join(scorer.devices))
        fetcher = None
        if settings.fetch is not None:
            from modstream.pipeline.fetch.fetcher import Fetcher  # aiohttp loads only for URLs

            fetcher = await stack.enter_async_context(Fetcher(settings.fetch))
        if metrics is not None:
            metrics.devices.track(scorer.device_statistics)
            if matcher is not None:
                metrics.banks.track(lambda: matcher.statistics().sizes)
        yield Moderator(
            scorer, settings.policy, fetcher=fetcher, cache=settings.cache, metrics=metrics,
            matcher=matcher, flood=settings.flood,
        )  # fmt: skip


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
