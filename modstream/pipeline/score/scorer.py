"""The scorer: ``await scorer.score(data, deadline=...)`` in front of a deadline-aware batcher.

Flow of one call::

    score() -> admission (bounded, budgeted wait) -> decode pool (decoding.py) -> (compiled yet?)
            -> lane's DeadlineBatcher -> dispatch loop -> DeviceWorker (AsyncInferQueue)
            -> result future -> score()

The network compiles on a thread while the first images decode (:meth:`Scorer.start`,
:mod:`~modstream.pipeline.score.compiling`).

In fast mode the first pass is a screen: an approximate crop (DCT-domain JPEG downscaling) on the
screen lane (bf16 where the CPU has it). A screen score that reaches ``confirm_at`` goes round once
more as the exact crop on the exact lane (the pure :mod:`~modstream.pipeline.score.confirmation`
plan says when and where): the shortcuts pay off on the many low-scoring images, and every score
near a decision threshold is the reference one.

Whether to screen at all (``screening``): ``auto`` (the default) screens only where the device
reports the screen precision among its optimisation capabilities (bf16 on AVX-512_BF16 or AMX
CPUs), decided once at start-up; elsewhere the screen would cost a full f32 pass, so every image
takes the exact path, which is then the fastest and the reference. ``always`` screens every
image; ``adaptive`` lets :class:`~modstream.pipeline.score.routing.RoutePlanner` choose per image
from the costs it measures (faster on mostly-safe content without bf16, but two copies of one image
may then be scored by different routes and differ below the confirmation floor). The scorer holds
that decision as one :class:`~modstream.pipeline.score.screening.ScreeningPlan`, replaced when the
devices answer and once more after compiling.

Decoding runs on a bounded thread pool while devices infer, so both cores stay busy. The dispatch
loop is the only place that moves items from the batcher to devices; it acts on the batcher's pure
decisions. A caller that is cancelled only loses its own result: its queued item is discarded, or
its in-flight score is dropped when the batch returns.

Shutdown order (:meth:`Scorer.aclose`): refuse new calls -> flush the queue and let every admitted
call finish (bounded by ``drain_timeout_s``) -> stop the dispatch loop -> wait for the devices ->
stop the decode pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from modstream.errors import DeviceError, Overloaded, ScorerClosed
from modstream.models.preprocess import PreparedImage, Preprocessing
from modstream.pipeline.score.batcher import Dispatch, WaitUntil
from modstream.pipeline.score.compiling import compile_lanes, make_workers, open_devices
from modstream.pipeline.score.config import SCREENING_MODES, ScorerConfig
from modstream.pipeline.score.confirmation import ConfirmationPlan, Crop, Pass
from modstream.pipeline.score.decoding import Decoded, DecodePool
from modstream.pipeline.score.lanes import Lane, LaneName, LaneStatistics
from modstream.pipeline.score.results import FrameSummary, ScoreResult, Timings
from modstream.pipeline.score.routing import Route, RoutePlanner, RouteStatistics
from modstream.pipeline.score.screening import FirstPass, Revision, ScreeningPlan

if TYPE_CHECKING:
    from modstream.pipeline.score.devices import DeviceStatistics, DeviceWorker, ScoreArray


__all__ = ["SCREENING_MODES", "Scorer", "ScorerConfig", "ScorerStatistics"]

log = logging.getLogger("modstream.scorer")


@dataclass(frozen=True, slots=True)
class _Scored:
    nsfw: float
    device: str
    precision: str
    queue_s: float
    infer_s: float
    batch_size: int


@dataclass(slots=True)
class _Item:
    pixels: np.ndarray[Any, np.dtype[np.uint8]]
    enqueued: float
    future: asyncio.Future[_Scored]


@dataclass(frozen=True, kw_only=True, slots=True)
class ScorerStatistics:
    """``active``: admitted calls not yet answered; ``queued``: images waiting in a batcher.
    ``lanes``: each lane once, the exact lane first (screens sharing it are counted there)."""

    active: int
    queued: int
    lanes: tuple[LaneStatistics, ...]
    devices: tuple[DeviceStatistics, ...]


class Scorer:
    """Scores image bytes on one or more OpenVINO devices. Create with :meth:`start`."""

    def __init__(self, config: ScorerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.model_id = "open_nsfw@(compiling)"
        self._loop = loop
        self._workers: list[DeviceWorker] = []
        # Confirmations first (the dispatch loop serves lanes in this order): their callers have
        # already waited for a screen.
        self._lanes: dict[LaneName, Lane[_Item]] = {}
        # Predicted now, so the first images decode the way the rest will while OpenVINO loads.
        self._plan = ScreeningPlan.predict(config)
        self._devices_answered: asyncio.Future[None] = loop.create_future()
        self._planner: RoutePlanner | None = None
        if self._plan.first_pass is FirstPass.PER_IMAGE:
            names = [spec.name for spec in config.devices]
            self._planner = RoutePlanner.for_devices(names, explore_every=config.explore_every)
        self._decoder = DecodePool(config.decode_workers, config.limits, loop)
        self._admission = asyncio.Semaphore(config.max_pending)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._active = 0
        self._closing = False
        self._closed = False
        self._compiling: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, config: ScorerConfig | None = None, *, wait: bool = True) -> Self:
        """Verify the weights and compile for every device, off the event loop.

        With ``wait=False`` it returns at once: calls to :meth:`score` decode right away and wait
        for the compiled network only before inference (a batch job overlaps its start-up with
        its first decodes). :meth:`ready` waits for, and re-raises a failure of, the compile.
        """
        scorer = cls(config or ScorerConfig(), asyncio.get_running_loop())
        scorer._compiling = asyncio.create_task(scorer._compile(), name="modstream-compile")
        if wait:
            try:
                await scorer.ready()
            except BaseException:
                await scorer.aclose()
                raise
        return scorer

    async def ready(self) -> None:
        assert self._compiling is not None
        await asyncio.shield(self._compiling)

    @property
    def compiled(self) -> bool:
        """Whether the network is compiled for every device (what a readiness probe asks)."""
        task = self._compiling
        if task is None or not task.done() or task.cancelled():
            return False
        return task.exception() is None

    @property
    def plan(self) -> ScreeningPlan:
        """How fast mode screens, as far as the devices have told so far."""
        return self._plan

    async def _compile(self) -> None:
        core, confirmed = await asyncio.to_thread(open_devices, self.config.cache_dir, self._plan)
        self._revise(confirmed)
        self._devices_answered.set_result(None)
        if self._plan.decided_by_devices:
            log.info("%s", self._plan.describe())
        compiled = await asyncio.to_thread(compile_lanes, self.config, core, self._plan)
        self.model_id = compiled.weights.model_id
        self._revise(compiled.revise(self._plan))
        workers = make_workers(compiled, self._plan, self._loop)
        self._workers = list(itertools.chain.from_iterable(workers.values()))
        self._lanes = {
            name: Lane(name, lane_workers, self.config.batch)
            for name, lane_workers in workers.items()
        }
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="modstream-dispatch")

    def _revise(self, revision: Revision) -> None:
        """Hold the revised plan, in place of the one before (what the devices say wins)."""
        if revision.warning is not None:
            log.warning("%s", revision.warning)
        self._plan = revision.plan

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def devices(self) -> list[str]:
        return [worker.device for worker in self._workers]

    async def score(
        self, data: bytes | Path, *, deadline: float | None = None, sha256: str | None = None
    ) -> ScoreResult:
        """Score one image. ``deadline`` is an absolute ``time.monotonic()`` value in seconds.

        ``data``: the image bytes, or a file to read on the decode pool (saves a thread hop).

        ``sha256``: the hex digest of ``data`` when the caller already has it (saves hashing).

        Raises :class:`~modstream.errors.ImageError` for bad input, :class:`Overloaded` when no
        slot frees up within ``admission_timeout_s``, :class:`ScorerClosed` after :meth:`aclose`.
        """
        if self._closing:
            raise ScorerClosed("the scorer is shut down")
        started = time.perf_counter()
        if deadline is None:
            deadline = time.monotonic() + self.config.latency_budget_s
        try:
            async with asyncio.timeout(self.config.admission_timeout_s):
                await self._admission.acquire()
        except TimeoutError:
            raise Overloaded(
                f"no scoring slot became free within {self.config.admission_timeout_s:.1f} s"
            ) from None
        self._active += 1
        try:
            mode = await self._first_pass()
            decoded = await self._decoder.decode(data, mode, sha256, self.config.pdq)
            read_s, pdq = decoded.read_s, decoded.image.pdq  # a confirmation does not hash again
            await self.ready()
            lane = self._plan.lane(mode)
            plan = self._confirmation(mode)
            frames: FrameSummary | None = None
            if decoded.image.frames:
                scored, frames = await self._score_frames(decoded.image, deadline, lane, plan)
                mode, decode_s = Preprocessing.EXACT, decoded.decode_s  # frames are exact crops
            else:
                scored, mode, decoded, decode_s = await self._score_still(
                    decoded, mode, lane, plan, deadline
                )
            if self._planner is not None:
                self._planner.observe_score(at_or_above_floor=scored.nsfw >= self.config.confirm_at)
        finally:
            self._admission.release()
            self._active -= 1
            if self._closing and self._active == 0:
                self._drained.set()
        return ScoreResult(
            nsfw=scored.nsfw,
            model=self.model_id,
            device=scored.device,
            precision=scored.precision,
            preprocessing=mode.value,
            sha256=decoded.sha256,
            width=decoded.image.width,
            height=decoded.image.height,
            format=decoded.image.format,
            pdq=pdq,
            frames=frames,
            timings=Timings(
                decode_s=decode_s,
                queue_s=scored.queue_s,
                infer_s=scored.infer_s,
                total_s=time.perf_counter() - started,
                batch_size=scored.batch_size,
                read_s=read_s,
            ),
        )

    def _confirmation(self, mode: Preprocessing) -> ConfirmationPlan:
        config = self.config
        return ConfirmationPlan(
            mode=mode, confirm_at=config.confirm_at,
            thresholds=tuple(config.decision_thresholds or ()), margin=config.decision_margin,
        )  # fmt: skip

    async def _score_still(
        self,
        decoded: Decoded,
        mode: Preprocessing,
        lane: LaneName,
        plan: ConfirmationPlan,
        deadline: float,
    ) -> tuple[_Scored, Preprocessing, Decoded, float]:
        """The first pass, then each pass the plan asks for (the exact crop, decoded again when
        the first was approximate); the last one's score, with every pass's queue and inference
        time, the preprocessing it reflects, its decode and the decoding time in all."""
        scored = await self._infer(decoded.image.pixels, deadline, lane)
        self._observe(mode, decoded, scored)
        crop = Crop.APPROXIMATE if decoded.image.approximate else Crop.EXACT
        last = Pass(crop, lane, scored.nsfw)
        decode_s, queue_s, infer_s = decoded.decode_s, scored.queue_s, scored.infer_s
        while (step := plan.after(last)) is not None:
            mode = Preprocessing.EXACT
            if last.crop is Crop.APPROXIMATE:
                decoded = await self._decoder.decode(decoded.data, mode, decoded.sha256)
                decode_s += decoded.decode_s
            scored = await self._infer(decoded.image.pixels, deadline, step.lane)
            if step.lane is LaneName.EXACT:
                self._observe(mode, decoded, scored)
            queue_s, infer_s = queue_s + scored.queue_s, infer_s + scored.infer_s
            last = Pass(step.crop, step.lane, scored.nsfw, first=False)
        return (
            dataclasses.replace(scored, queue_s=queue_s, infer_s=infer_s),
            mode,
            decoded,
            decode_s,
        )

    async def _score_frames(
        self, image: PreparedImage, deadline: float, lane: LaneName, plan: ConfirmationPlan
    ) -> tuple[_Scored, FrameSummary]:
        """Every sampled frame in the same batches as still images; the worst frame is the
        item's score. The frames the plan names (on a screen lane, those that could be the worst)
        are scored again on the exact lane."""
        outcomes = list(await asyncio.gather(
            *(self._infer(frame.pixels, deadline, lane) for frame in image.frames)
        ))  # fmt: skip
        scores = [outcome.nsfw for outcome in outcomes]
        close = plan.frames(scores, lane)
        exact = await asyncio.gather(
            *(self._infer(image.frames[i].pixels, deadline, LaneName.EXACT) for i in close)
        )
        for index, outcome in zip(close, exact, strict=True):
            outcomes[index] = outcome
            scores[index] = outcome.nsfw
        worst = max(range(len(scores)), key=scores.__getitem__)
        summary = FrameSummary(
            total=image.total_frames, scored=len(image.frames),
            worst_index=image.frames[worst].index, worst_offset_s=image.frames[worst].offset_s,
            scores=tuple(scores),
        )  # fmt: skip
        chosen = outcomes[worst]
        return dataclasses.replace(
            chosen,
            queue_s=max(o.queue_s for o in outcomes),
            infer_s=sum(o.infer_s for o in outcomes),
        ), summary

    async def _first_pass(self) -> Preprocessing:
        """How this image is decoded first: the screen's approximate crop, or the exact one."""
        first = self._plan.first_pass
        if first is FirstPass.UNDECIDED:
            first = (await self._answered_plan()).first_pass
        if first is FirstPass.PER_IMAGE:
            assert self._planner is not None
            first = FirstPass.EXACT if self._planner.choose() is Route.EXACT else FirstPass.SCREEN
        return Preprocessing.FAST if first is FirstPass.SCREEN else Preprocessing.EXACT

    async def _answered_plan(self) -> ScreeningPlan:
        """The plan once the devices have answered (the CPU flags could not tell)."""
        assert self._compiling is not None
        waiting: set[asyncio.Future[Any]] = {self._devices_answered, self._compiling}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not self._devices_answered.done():
            await self.ready()  # the devices could not be opened: raise why
        return self._plan

    def _observe(self, mode: Preprocessing, decoded: Decoded, scored: _Scored) -> None:
        """Feed the route planner what this pass cost (a fast-mode decode is a screen's)."""
        planner = self._planner
        if planner is None:
            return
        route = Route.SCREEN if mode is Preprocessing.FAST else Route.EXACT
        planner.observe_decode(route, decoded.decode_s)
        planner.observe_infer(route, scored.infer_s / max(scored.batch_size, 1))

    def routes(self) -> RouteStatistics | None:
        """How fast mode has routed images so far (``None`` outside fast mode)."""
        return self._planner.statistics() if self._planner is not None else None

    async def _infer(
        self, pixels: np.ndarray[Any, np.dtype[np.uint8]], deadline: float, lane: LaneName
    ) -> _Scored:
        future: asyncio.Future[_Scored] = self._loop.create_future()
        item = _Item(pixels=pixels, enqueued=time.perf_counter(), future=future)
        self._lanes[lane].batcher.add(item, now=time.monotonic(), deadline=deadline)
        self._wake.set()
        return await future

    def statistics(self) -> ScorerStatistics:
        lanes = tuple(lane.statistics() for lane in self._lanes.values())
        return ScorerStatistics(
            active=self._active,
            queued=sum(lane.batcher.queued for lane in lanes),
            lanes=lanes,
            devices=self.device_statistics(),
        )

    def device_statistics(self) -> tuple[DeviceStatistics, ...]:
        """Each device worker's counters (images, batches, busy seconds, failures), exact lane's
        workers first."""
        return tuple(worker.statistics() for worker in self._workers)

    async def aclose(self) -> None:
        """Drain admitted work, then release devices and threads. Safe to call twice."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        try:
            if self._active:
                try:
                    async with asyncio.timeout(self.config.drain_timeout_s):
                        await self._drained.wait()
                except TimeoutError:
                    pass
        finally:
            self._closed = True
            await asyncio.shield(self._stop())

    async def _stop(self) -> None:
        if self._compiling is not None:
            # A compile thread cannot be interrupted; let it finish so its devices are released.
            await asyncio.wait([self._compiling])
            if not self._compiling.cancelled():
                self._compiling.exception()  # reported by ready(); marked as seen here
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        for worker in self._workers:
            await asyncio.to_thread(worker.wait_idle)
        self._decoder.shutdown()
        failure = ScorerClosed("the scorer shut down before this image was scored")
        for lane in self._lanes.values():
            for item in lane.batcher.take(len(lane.batcher)):
                if not item.future.done():
                    item.future.set_exception(failure)

    async def _dispatch_loop(self) -> None:
        while True:
            self._wake.clear()
            wake_at: float | None = None
            dispatched = False
            for lane in self._lanes.values():
                lane.batcher.discard(lambda item: item.future.done())
                decision = lane.batcher.decide(
                    now=time.monotonic(), free_slots=lane.free_slots, flush=self._closing
                )
                if isinstance(decision, Dispatch):
                    self._dispatch(lane, lane.batcher.take(decision.count))
                    dispatched = True
                elif isinstance(decision, WaitUntil):
                    wake_at = decision.when if wake_at is None else min(wake_at, decision.when)
            if dispatched:
                continue
            timeout = None if wake_at is None else max(wake_at - time.monotonic(), 0.0)
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _dispatch(self, lane: Lane[_Item], items: list[_Item]) -> None:
        worker = lane.pick_worker()
        pixels = np.stack([item.pixels for item in items])
        callback = partial(self._on_batch, lane, items, worker, time.perf_counter())
        try:
            worker.submit(pixels, callback)
        except DeviceError as exc:
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)

    def _on_batch(
        self,
        lane: Lane[_Item],
        items: list[_Item],
        worker: DeviceWorker,
        dispatched: float,
        outcome: ScoreArray | DeviceError,
        elapsed: float,
    ) -> None:
        self._wake.set()
        if isinstance(outcome, DeviceError):
            for item in items:
                if not item.future.done():
                    item.future.set_exception(outcome)
            return
        lane.batcher.service.observe(len(items), elapsed)
        for item, nsfw in zip(items, outcome.tolist(), strict=True):
            if item.future.done():  # the caller was cancelled while the batch ran
                continue
            item.future.set_result(
                _Scored(
                    nsfw=float(nsfw),
                    device=worker.device,
                    precision=worker.network.precision,
                    queue_s=dispatched - item.enqueued,
                    infer_s=elapsed,
                    batch_size=len(items),
                )
            )
