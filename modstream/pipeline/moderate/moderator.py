"""One image through moderation, with no Kafka in sight: the step every front door shares.

    cache by URL -> guarded fetch -> sha256 -> cache by content -> score (and PDQ hash)
        -> hash banks -> decide -> metrics

The Kafka stream (``modstream run``), ``modstream score`` and the HTTP API (``modstream serve``)
all call :class:`Moderator`, and all turn its :class:`Moderated` outcome into fields with
:func:`result_fields`, so the three can never disagree on a field or a decision. Failures are
:class:`~modstream.errors.ModstreamError` subclasses, raised for the caller to report (an error
record, a JSON line, a 4xx); the moderator has already counted them.

The hash banks are looked up on every outcome, cached ones included: a bank that gained a hash
since an image was scored matches its next copy. :func:`decide` is the rule: a match in a
``match`` bank decides ``matched`` whatever the score; a match in a ``safe`` bank turns
``review`` into ``safe`` (known-good content skips people) and leaves ``flagged`` alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.errors import FetchError, ModstreamError
from modstream.models.decode import DecodeLimits
from modstream.models.pdq import PdqHash
from modstream.models.preprocess import HashedImage, hash_image
from modstream.pipeline.match.banks import BankAction
from modstream.pipeline.match.flood import Flood, FloodGuard, FloodSettings
from modstream.pipeline.match.matcher import Match, Matcher
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.brandsafety import Risk, tier_fields
from modstream.pipeline.moderate.cache import CacheConfig, CacheStatistics, TTLCache
from modstream.pipeline.moderate.policy import Decision, Policy
from modstream.pipeline.score.results import ScoreResult
from modstream.pipeline.score.scorer import Scorer

if TYPE_CHECKING:  # aiohttp is imported only where URLs are fetched
    from modstream.pipeline.fetch.fetcher import Fetched, Fetcher

__all__ = ["Hashed", "Moderated", "Moderator", "ModeratorStatistics", "decide", "result_fields"]

log = logging.getLogger("modstream.policy")


@dataclass(frozen=True, kw_only=True, slots=True)
class Moderated:
    """The outcome for one image: its score, the decision under the policy, and how it came."""

    result: ScoreResult
    decision: Decision
    policy: str
    risk: Risk  # the brand-safety tier (brandsafety.py)
    cached: bool = False
    fetch_s: float | None = None  # fetched from a URL
    fetch_attempts: int | None = None  # requests it took (above 1: retried)
    read_s: float | None = None  # read from a file
    match: Match | None = None  # the image's hash matched a bank


@dataclass(frozen=True, kw_only=True, slots=True)
class Hashed:
    """An image hashed and looked up, not scored (``POST /v1/hash``)."""

    fields: dict[str, Any]
    match: Match | None
    pdq: PdqHash


def decide(policy: Policy, nsfw: float, match: Match | None) -> Decision:
    """The decision for a score and what the hash banks said of the image: a quarantined entry's
    match goes to people, whatever the score."""
    if match is not None and match.action is BankAction.MATCH:
        return Decision.REVIEW if match.quarantined else Decision.MATCHED
    decision = policy.decide(nsfw)
    if match is not None and decision is Decision.REVIEW:
        return Decision.SAFE
    return decision


def hash_fields(pdq: PdqHash | None, match: Match | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "pdq": None if pdq is None else pdq.hex,
        "pdq_quality": None if pdq is None else pdq.quality,
    }
    if match is not None:
        fields["match"] = match.fields()
    return fields


def result_fields(moderated: Moderated) -> dict[str, Any]:
    """The fields a result carries on every front door (topic record, JSON line, API body)."""
    result = moderated.result
    timings: dict[str, float | int] = {}
    if moderated.fetch_s is not None:
        timings["fetch"] = round(moderated.fetch_s * 1000, 3)
    if moderated.read_s is not None:
        timings["read"] = round(moderated.read_s * 1000, 3)
    timings.update(result.timings.as_ms())
    fetched = (
        {} if moderated.fetch_attempts is None else {"fetch_attempts": moderated.fetch_attempts}
    )
    return {
        "nsfw": round(result.nsfw, 6),
        "decision": moderated.decision.value,
        "policy": moderated.policy,
        "brand_safety": tier_fields(moderated.risk),
        "model": result.model,
        "device": result.device,
        "precision": result.precision,
        "preprocessing": result.preprocessing,
        "sha256": result.sha256,
        "width": result.width,
        "height": result.height,
        **hash_fields(result.pdq, moderated.match),
        **({} if result.frames is None else {"frames": result.frames.fields()}),
        "cached": moderated.cached,
        **fetched,
        "timings": timings,
    }


@dataclass(frozen=True, slots=True)
class ModeratorStatistics:
    cache_by_url: CacheStatistics
    cache_by_sha256: CacheStatistics


class Moderator:
    """Moderates images by URL or by content, through one scorer, fetcher and pair of caches."""

    def __init__(
        self,
        scorer: Scorer,
        policy: Policy,
        *,
        fetcher: Fetcher | None = None,
        cache: CacheConfig | None = None,
        metrics: PipelineMetrics | None = None,
        matcher: Matcher | None = None,
        flood: FloodSettings | None = None,
    ) -> None:
        self.scorer = scorer
        self.policy = policy
        self.matcher = matcher
        self._flood = FloodGuard(flood or FloodSettings())
        self._fetcher = fetcher
        self._metrics = metrics or PipelineMetrics()
        self._by_url: TTLCache[ScoreResult] = TTLCache(cache or CacheConfig())
        self._by_sha: TTLCache[ScoreResult] = TTLCache(cache or CacheConfig())
        self._fit_checked = False

    async def moderate_url(self, url: str, *, deadline: float | None = None) -> Moderated:
        """Fetch ``url`` with the guarded fetcher (unless its score is cached) and moderate it."""
        try:
            known = self._by_url.get(url)
            if known is not None:
                self._metrics.cache_hits.labels("url").inc()
                return self._counted(self._decided(known, cached=True, fetch_s=0.0))
            fetched = await self._fetched(url)
            self._metrics.stage.labels("fetch").observe(fetched.fetch_s)
            moderated = await self._moderate_body(fetched.body, deadline, fetch_s=fetched.fetch_s)
            moderated = dataclasses.replace(moderated, fetch_attempts=fetched.attempts)
        except ModstreamError as exc:
            self._metrics.errors.labels(exc.kind).inc()
            raise
        self._by_url.put(url, moderated.result)
        return self._counted(moderated)

    async def moderate_bytes(
        self,
        body: bytes | Path,
        *,
        deadline: float | None = None,
        read_s: float | None = None,
        sha256: str | None = None,
    ) -> Moderated:
        """Moderate an image given whole (an upload, or a file the scorer reads by path);
        ``sha256`` is the body's digest when the caller has it already."""
        try:
            moderated = await self._moderate_body(body, deadline, read_s=read_s, digest=sha256)
        except ModstreamError as exc:
            self._metrics.errors.labels(exc.kind).inc()
            raise
        return self._counted(moderated)

    async def hash_bytes(self, body: bytes) -> Hashed:
        """Hash an image (from its full decode, as a score of it is hashed) and look it up,
        without scoring it; on a thread, as every decode."""
        limits = self.scorer.config.limits
        dihedral = self.matcher is not None and self.matcher.rotations
        try:
            hashed, digest = await asyncio.to_thread(_hashed, body, limits, dihedral)
        except ModstreamError as exc:
            self._metrics.errors.labels(exc.kind).inc()
            raise
        match = self._match(hashed.pdq, digest)
        fields = {
            "sha256": digest, "width": hashed.width, "height": hashed.height,
            **hash_fields(hashed.pdq, match),
        }  # fmt: skip
        return Hashed(fields=fields, match=match, pdq=hashed.pdq)

    async def fetch(self, url: str) -> bytes:
        """The body at ``url``, through the guarded fetcher (for hashing: no score is made)."""
        try:
            return (await self._fetched(url)).body
        except ModstreamError as exc:
            self._metrics.errors.labels(exc.kind).inc()
            raise

    async def _fetched(self, url: str) -> Fetched:
        if self._fetcher is None:
            raise RuntimeError("this moderator was built without a fetcher")
        try:
            fetched = await self._fetcher.fetch(url)
        except FetchError as exc:
            self._metrics.fetch_attempts.labels("failed").observe(exc.attempts)
            raise
        self._metrics.fetch_attempts.labels("fetched").observe(fetched.attempts)
        return fetched

    def known(self, sha256: str) -> Moderated | None:
        """The cached outcome for content with this sha256 (lower-case hex), if any."""
        result = self._by_sha.get(sha256.lower())
        return None if result is None else self._decided(result, cached=True)

    def statistics(self) -> ModeratorStatistics:
        return ModeratorStatistics(
            cache_by_url=self._by_url.statistics(), cache_by_sha256=self._by_sha.statistics()
        )

    def _counted(self, moderated: Moderated) -> Moderated:
        self._metrics.results.labels(moderated.decision.value).inc()
        return moderated

    async def _moderate_body(
        self,
        body: bytes | Path,
        deadline: float | None,
        *,
        fetch_s: float | None = None,
        read_s: float | None = None,
        digest: str | None = None,
    ) -> Moderated:
        if isinstance(body, bytes):
            if digest is None:
                digest = await asyncio.to_thread(_sha256, body)  # off the event loop
            known = self._by_sha.get(digest)
            if known is not None:
                self._metrics.cache_hits.labels("sha256").inc()
                return self._decided(known, cached=True, fetch_s=fetch_s, read_s=read_s)
        result = await self.scorer.score(body, sha256=digest, deadline=deadline)
        if not self._fit_checked:  # the model id is known once the scorer has compiled
            self._fit_checked = True
            self._warn_if_unfitted()
        timings = result.timings
        for stage, seconds in (("decode", timings.decode_s), ("queue", timings.queue_s),
                               ("infer", timings.infer_s)):  # fmt: skip
            self._metrics.stage.labels(stage).observe(seconds)
        self._metrics.batch_size.observe(timings.batch_size)
        self._by_sha.put(result.sha256, result)
        if read_s is None and isinstance(body, Path):
            read_s = timings.read_s
        return self._decided(result, fetch_s=fetch_s, read_s=read_s)

    def _warn_if_unfitted(self) -> None:
        mode = self.scorer.config.preprocessing.value
        problem = self.policy.fit_mismatch(self.scorer.model_id, mode)
        if problem is not None:
            log.warning("WARNING: %s", problem)

    def _decided(
        self,
        result: ScoreResult,
        *,
        cached: bool = False,
        fetch_s: float | None = None,
        read_s: float | None = None,
    ) -> Moderated:
        match = self._match(result.pdq, result.sha256)
        decision = decide(self.policy, result.nsfw, match)
        return Moderated(
            result=result, decision=decision, policy=self.policy.name,
            risk=self.policy.brand_safety.risk(decision, result.nsfw), cached=cached,
            fetch_s=fetch_s, read_s=read_s, match=match,
        )  # fmt: skip

    def _match(self, pdq: PdqHash | None, sha256: str) -> Match | None:
        if self.matcher is None or pdq is None:
            return None
        started = time.perf_counter()
        match = self.matcher.lookup(pdq)
        self._metrics.hash_lookup.observe(time.perf_counter() - started)
        self._metrics.hash_lookups.inc()
        if match is None:
            return None
        self._metrics.hash_matches.labels(match.bank).inc()
        if match.action is BankAction.MATCH:
            match = self._flood_checked(match, sha256)
        return match

    def _flood_checked(self, match: Match, sha256: str) -> Match:
        """The match, marked quarantined when its entry matches a flood of images (flood.py)."""
        assert self.matcher is not None
        entry = (match.bank, match.id)
        if entry in self.matcher.released:
            for bank, entry_id in self._flood.release([entry]):
                log.warning("hash bank %s entry %s released from flood quarantine", bank, entry_id)
        flood = self._flood.observe(entry, sha256, time.monotonic())
        if flood is Flood.STARTED:
            settings = self._flood.settings
            self._metrics.bank_quarantined.labels(match.bank).inc()
            log.warning(
                "WARNING: hash bank %s entry %s matched more than %d distinct images in %g s: "
                "quarantined, its matches go to review until it is released (modstream bank "
                "release %s PDQHEX)", match.bank, match.id, settings.limit, settings.window_s,
                match.bank,
            )  # fmt: skip
        if flood is Flood.CLEAR:
            return match
        return dataclasses.replace(match, quarantined=True)


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _hashed(body: bytes, limits: DecodeLimits, dihedral: bool) -> tuple[HashedImage, str]:
    """The PDQ hash and the sha256 of an upload, in one trip to a worker thread."""
    return hash_image(body, limits, dihedral=dihedral), _sha256(body)
