"""Score a labelled set through the moderation step ``modstream score`` uses.

Same scorer options (decode mode, devices, precision), same guarded fetcher for URLs. Scores
come from the on-disk cache when the content (and model, and preprocessing) was seen before.
An input that cannot be scored is kept with its error kind: the report counts and lists it, and
leaves it out of the metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from modstream.errors import ModstreamError
from modstream.evaluation.labelled import Labelled
from modstream.evaluation.score_cache import ScoreCache
from modstream.models.decode import DecodeLimits, read_limited
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.moderate.step import ModerationSettings, open_moderator
from modstream.pipeline.moderate.window import bulk_deadline, in_order
from modstream.pipeline.score.scorer import ScorerConfig

__all__ = ["Scored", "ScoringRun", "score_labelled", "scored_arrays"]


@dataclass(frozen=True, slots=True)
class Scored:
    item: Labelled
    nsfw: float | None = None
    error_kind: str | None = None
    error_message: str | None = None


def scored_arrays(
    scored: Sequence[Scored],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Scores and labels of the items that were scored (failures left out), as arrays."""
    usable = [item for item in scored if item.nsfw is not None]
    scores = np.array([item.nsfw for item in usable], dtype=np.float64)
    labels = np.array([item.item.label for item in usable], dtype=np.int64)
    return scores, labels


@dataclass(frozen=True, slots=True)
class ScoringRun:
    scored: list[Scored]
    model: str
    preprocessing: str
    cache_hits: int
    seconds: float


async def score_labelled(
    items: Sequence[Labelled],
    config: ScorerConfig,
    fetch: FetchConfig,
    *,
    cache_path: Path | None,
    on_done: Callable[[Scored], None] = lambda _scored: None,
) -> ScoringRun:
    started = time.perf_counter()
    settings = ModerationSettings(
        scorer=config,
        fetch=fetch if any(item.input.url is not None for item in items) else None,
        cache=CacheConfig(max_entries=0),  # the on-disk score cache is the one that counts here
    )
    async with open_moderator(settings) as moderator:
        scorer = moderator.scorer
        mode = config.preprocessing.value
        with ScoreCache(cache_path, model=scorer.model_id, preprocessing=mode) as cache:

            async def one(item: Labelled) -> Scored:
                return await _score_one(item, moderator, cache, config.limits)

            scored: list[Scored] = []
            async for done in in_order(items, one, size=config.max_pending):
                scored.append(done)
                on_done(done)
            return ScoringRun(
                scored=scored,
                model=scorer.model_id,
                preprocessing=mode,
                cache_hits=cache.hits,
                seconds=time.perf_counter() - started,
            )
    raise AssertionError("unreachable")  # pragma: no cover (mypy: the block always returns)


async def _score_one(
    item: Labelled, moderator: Moderator, cache: ScoreCache, limits: DecodeLimits
) -> Scored:
    deadline = bulk_deadline()
    source = item.input
    try:
        if source.url is not None:
            known = cache.sha256_of(source.url)
            cached = cache.score(known) if known is not None else None
            if cached is not None:
                return Scored(item, nsfw=cached)
            moderated = await moderator.moderate_url(source.url, deadline=deadline)
            cache.put(moderated.result.sha256, moderated.result.nsfw, url=source.url)
            return Scored(item, nsfw=moderated.result.nsfw)
        assert source.path is not None
        body, digest = await asyncio.to_thread(_read_and_hash, source.path, limits)
        cached = cache.score(digest)
        if cached is not None:
            return Scored(item, nsfw=cached)
        moderated = await moderator.moderate_bytes(body, deadline=deadline, sha256=digest)
        cache.put(digest, moderated.result.nsfw)
        return Scored(item, nsfw=moderated.result.nsfw)
    except ModstreamError as exc:
        return Scored(item, error_kind=exc.kind, error_message=str(exc))


def _read_and_hash(path: Path, limits: DecodeLimits) -> tuple[bytes, str]:
    """The file's bytes and their sha256, on a thread: the cache key, reused by the scorer."""
    body = read_limited(path, limits)
    return body, hashlib.sha256(body).hexdigest()
