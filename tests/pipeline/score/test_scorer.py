"""The async scorer on real OpenVINO (CPU): batching, device workers, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import locations
import pytest
from PIL import Image
from scorerconfigs import scorer_config

from modstream.errors import NotAnImage, Overloaded, ScorerClosed
from modstream.models import capabilities
from modstream.models.network import DeviceSpec, make_core, runs_precision
from modstream.models.preprocess import Preprocessing
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.score.batcher import BatchPolicy
from modstream.pipeline.score.lanes import LaneName
from modstream.pipeline.score.scorer import Scorer
from modstream.pipeline.score.screening import FirstPass

LADDER = locations.LADDER
REFERENCE: dict[str, float] = json.loads((LADDER / "reference.json").read_text())
IMAGES = {name: (LADDER / name).read_bytes() for name in REFERENCE}


config = scorer_config  # the exact preprocessing unless told, cached in the session's directory


async def test_concurrent_calls_are_batched_and_each_gets_its_own_score(ov_cache_dir: Path) -> None:
    """Many concurrent calls share batches, and every caller gets the score of its own image."""
    names = list(REFERENCE) * 2
    async with await Scorer.start(config(ov_cache_dir)) as scorer:
        results = await asyncio.gather(*(scorer.score(IMAGES[name]) for name in names))
        stats = scorer.statistics()
    for name, result in zip(names, results, strict=True):
        assert result.nsfw == pytest.approx(REFERENCE[name], abs=2e-3), name
        assert result.model.startswith("open_nsfw@864bb37b")
    assert max(result.timings.batch_size for result in results) > 1
    assert stats.devices[0].images == len(names)
    assert stats.active == stats.queued == 0


async def test_device_statistics_are_snapshots(ov_cache_dir: Path) -> None:
    """A DeviceStatistics read earlier keeps its numbers while the worker goes on counting."""
    name = next(iter(REFERENCE))
    async with await Scorer.start(config(ov_cache_dir)) as scorer:
        (before,) = scorer.device_statistics()
        await scorer.score(IMAGES[name])
        (after,) = scorer.device_statistics()
    assert (before.images, before.batches, before.busy_s) == (0, 0, 0.0)
    assert (after.images, after.batches, after.in_flight) == (1, 1, 0)
    assert after.busy_s > 0
    assert after.requests == before.requests >= 1


async def test_two_device_workers_share_the_load(ov_cache_dir: Path) -> None:
    """With two workers, batches go to whichever has a free request, and both do work."""
    devices = (DeviceSpec(name="CPU", num_requests=1), DeviceSpec(name="CPU", num_requests=1))
    cfg = config(ov_cache_dir, devices=devices, batch=BatchPolicy(max_batch_size=2))
    names = list(REFERENCE)
    metrics = PipelineMetrics()
    async with await Scorer.start(cfg) as scorer:
        metrics.devices.track(scorer.device_statistics)
        results = await asyncio.gather(*(scorer.score(IMAGES[name]) for name in names))
        per_device = [device.images for device in scorer.device_statistics()]
    assert len(per_device) == 2
    scraped = [
        metrics.registry.get_sample_value(
            "modstream_device_images_total", {"device": "CPU", "worker": str(index)}
        )
        for index in range(2)
    ]
    assert scraped == per_device  # what Prometheus sees is what the workers counted
    assert all(count > 0 for count in per_device), per_device
    assert sum(per_device) == len(names)
    for name, result in zip(names, results, strict=True):
        assert result.nsfw == pytest.approx(REFERENCE[name], abs=2e-3), name


async def test_cancelling_callers_never_loses_or_swaps_other_results(ov_cache_dir: Path) -> None:
    """Cancelled callers at any stage leave every other caller with exactly its own score."""
    rng = random.Random(7)
    names = [rng.choice(list(REFERENCE)) for _ in range(60)]
    async with await Scorer.start(config(ov_cache_dir)) as scorer:
        tasks = [asyncio.create_task(scorer.score(IMAGES[name])) for name in names]
        doomed = set(rng.sample(range(len(tasks)), 25))
        for step, index in enumerate(sorted(doomed)):
            if step % 5 == 0:
                await asyncio.sleep(0)  # let some of them reach the queue or a device first
            tasks[index].cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        # The scorer is still healthy afterwards.
        again = await scorer.score(IMAGES[names[0]])
        assert scorer.statistics().queued == 0
    for index, (name, outcome) in enumerate(zip(names, outcomes, strict=True)):
        if isinstance(outcome, asyncio.CancelledError):
            assert index in doomed
            continue
        assert not isinstance(outcome, BaseException), outcome
        assert outcome.nsfw == pytest.approx(REFERENCE[name], abs=2e-3), (index, name)
    assert again.nsfw == pytest.approx(REFERENCE[names[0]], abs=2e-3)


async def test_bad_input_is_a_typed_error_and_the_scorer_keeps_going(ov_cache_dir: Path) -> None:
    """A broken image fails alone; the next call still scores."""
    async with await Scorer.start(config(ov_cache_dir)) as scorer:
        with pytest.raises(NotAnImage) as caught:
            await scorer.score(b"<html><body>not found</body></html>")
        assert caught.value.kind == "not_an_image"
        name = next(iter(REFERENCE))
        result = await scorer.score(IMAGES[name])
    assert result.nsfw == pytest.approx(REFERENCE[name], abs=2e-3)


async def test_tight_deadline_dispatches_before_max_delay(ov_cache_dir: Path) -> None:
    """A lone image whose deadline is near leaves long before a 2 s max_delay would release it."""
    cfg = config(ov_cache_dir, batch=BatchPolicy(max_batch_size=8, max_delay_s=2.0))
    name = next(iter(REFERENCE))
    async with await Scorer.start(cfg) as scorer:
        result = await scorer.score(IMAGES[name], deadline=time.monotonic() + 0.2)
        relaxed = await scorer.score(IMAGES[name], deadline=time.monotonic() + 60)
    assert result.timings.queue_s < 1.0
    assert relaxed.timings.queue_s >= 2.0 - 0.05  # waited for company up to max_delay


async def test_full_admission_raises_overloaded(ov_cache_dir: Path) -> None:
    """With one slot and no patience, a second concurrent call is refused as overloaded."""
    cfg = config(ov_cache_dir, max_pending=1, admission_timeout_s=0.001)
    name = next(iter(REFERENCE))
    async with await Scorer.start(cfg) as scorer:
        outcomes = await asyncio.gather(
            scorer.score(IMAGES[name]), scorer.score(IMAGES[name]), return_exceptions=True
        )
    assert not isinstance(outcomes[0], BaseException)
    assert isinstance(outcomes[1], Overloaded)
    assert outcomes[1].retriable


async def test_aclose_drains_admitted_work_then_refuses(ov_cache_dir: Path) -> None:
    """Closing lets admitted calls finish, then new calls get ScorerClosed; twice is fine."""
    names = list(REFERENCE)[:10]
    scorer = await Scorer.start(config(ov_cache_dir))
    tasks = [asyncio.create_task(scorer.score(IMAGES[name])) for name in names]
    await asyncio.sleep(0)  # every task is admitted before the close starts
    await scorer.aclose()
    results = await asyncio.gather(*tasks)
    for name, result in zip(names, results, strict=True):
        assert result.nsfw == pytest.approx(REFERENCE[name], abs=2e-3), name
    with pytest.raises(ScorerClosed):
        await scorer.score(IMAGES[names[0]])
    await scorer.aclose()


async def test_fast_mode_screens_low_scores_and_confirms_high_ones(
    ov_cache_dir: Path, cpu_path: Callable[[str], None]
) -> None:
    """A screen keeps its shortcut for a low-scoring photo and rescores a high one exactly."""
    photo = (locations.SAMPLES / "photo-a.jpg").read_bytes()
    high_name = max(REFERENCE, key=lambda name: REFERENCE[name])
    with Image.open(LADDER / high_name) as image:
        buffer = io.BytesIO()
        image.convert("RGB").resize((1600, 1600)).save(buffer, format="JPEG", quality=92)
    screening = config(ov_cache_dir, preprocessing=Preprocessing.FAST, screening="always")
    async with await Scorer.start(screening) as fast:
        low, high = await asyncio.gather(fast.score(photo), fast.score(buffer.getvalue()))
    cpu_path(f"{fast.plan.describe()} (screen ran at {low.precision})")
    assert low.nsfw < fast.config.confirm_at
    assert low.preprocessing == "fast"
    assert high.nsfw > 0.9
    assert high.preprocessing == "exact"
    assert high.timings.decode_s > 0 and high.timings.infer_s > 0


# What this CPU runs, as OpenVINO reports it; the test ids below say which path each case takes.
BF16_HERE = runs_precision(make_core(None), "CPU", "bf16")
AUTO_PATHS = [
    pytest.param("f32", False, id="f32-screen-never-cheaper:exact-path"),
    pytest.param(
        "bf16",
        BF16_HERE,
        id="bf16-screen:" + ("screens-at-bf16" if BF16_HERE else "exact-path-no-bf16-here"),
    ),
]


@pytest.mark.parametrize(("screen_precision", "screens"), AUTO_PATHS)
async def test_auto_screening_is_decided_by_what_the_device_runs(
    ov_cache_dir: Path,
    screen_precision: str,
    screens: bool,
    cpu_path: Callable[[str], None],
) -> None:
    """screening="auto" screens only where the device runs the screen precision: there, low
    scores keep their bf16 screen and every score from 0.05 up is the exact scorer's; asked for a
    screen it cannot make cheaper (f32, or bf16 on a CPU without it), every image takes the exact
    path and gets the exact scorer's score, bit for bit."""
    photo = (locations.SAMPLES / "photo-a.jpg").read_bytes()
    names = sorted(REFERENCE)[:6]
    inputs = [photo, *(IMAGES[name] for name in names)]
    exact_config = config(ov_cache_dir, preprocessing=Preprocessing.EXACT)
    async with await Scorer.start(exact_config) as exact:
        expected = [r.nsfw for r in await asyncio.gather(*(exact.score(d) for d in inputs))]
    auto = config(ov_cache_dir, preprocessing=Preprocessing.FAST, screen_precision=screen_precision)
    async with await Scorer.start(auto) as scorer:
        results = await asyncio.gather(*(scorer.score(d) for d in inputs))
        lanes = {lane.name for lane in scorer.statistics().lanes}
        plan = scorer.plan
    cpu_path(plan.describe())
    if screens:
        assert plan.first_pass is FirstPass.SCREEN
        assert lanes == {LaneName.EXACT, LaneName.SCREEN}
        kept = [r for r in results if r.preprocessing == "fast"]
        assert kept, "no screen score was kept"  # photo-a scores far below the floor
        assert all(r.precision == "bf16" and r.nsfw < 0.05 for r in kept), kept
        assert all(r.preprocessing == "exact" for r in results if r.nsfw >= 0.05)
        final = [
            (r.nsfw, e)
            for r, e in zip(results, expected, strict=True)
            if r.preprocessing == "exact"
        ]
        assert final, "no screen score was confirmed"
        assert all(nsfw == e for nsfw, e in final), final  # a confirmation is the exact score
        return
    assert plan.first_pass is FirstPass.EXACT
    assert lanes == {LaneName.EXACT}, lanes
    assert [r.preprocessing for r in results] == ["exact"] * len(inputs)
    assert [r.nsfw for r in results] == expected


def _denied_precision() -> str | None:
    """A screen precision OpenVINO says this CPU does not run natively (None: it runs both)."""
    core = make_core(None)
    return next((p for p in ("f16", "bf16") if not runs_precision(core, "CPU", p)), None)


async def test_screens_decoded_on_a_prediction_openvino_contradicts_are_scored_exactly(
    ov_cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    cpu_path: Callable[[str], None],
) -> None:
    """CPU flags that promise a screen precision OpenVINO then denies: the images already decoded
    as screens go to the exact lane (there is no screen lane), every one is scored, and every
    score from 0.05 up is the exact scorer's."""
    precision = _denied_precision()
    if precision is None:
        pytest.skip("this CPU runs both f16 and bf16: no prediction for OpenVINO to contradict")
    claimed = {"f16": "avx512_fp16", "bf16": "avx512_bf16"}[precision]
    cpu_path(f"flags made to claim {claimed}; OpenVINO denies {precision}")
    monkeypatch.setattr(capabilities, "cpu_flags", lambda: frozenset({"avx2", claimed}))
    photo = (locations.SAMPLES / "photo-a.jpg").read_bytes()
    inputs = [photo, *(_large_jpeg(name) for name in sorted(REFERENCE)[:6])]
    async with await Scorer.start(config(ov_cache_dir)) as exact:
        expected = [r.nsfw for r in await asyncio.gather(*(exact.score(d) for d in inputs))]
    fast = config(ov_cache_dir, preprocessing=Preprocessing.FAST, screen_precision=precision)
    with caplog.at_level(logging.WARNING, logger="modstream.scorer"):
        async with await Scorer.start(fast, wait=False) as scorer:
            # Admitted before OpenVINO has answered: the first pass follows the prediction.
            assert scorer.plan.first_pass is FirstPass.SCREEN
            results = await asyncio.gather(*(scorer.score(d) for d in inputs))
            plan = scorer.plan
    assert f"the CPU flags predicted {precision} screen support" in caplog.text
    assert plan.first_pass is FirstPass.EXACT
    assert {r.precision for r in results} == {"f32"}
    assert "fast" in {r.preprocessing for r in results}  # the screens decoded on the prediction
    high = [(r.nsfw, e) for r, e in zip(results, expected, strict=True) if r.nsfw >= 0.05]
    assert high and all(nsfw == e for nsfw, e in high), high


def _large_jpeg(name: str) -> bytes:
    """A ladder image as a 1200 px JPEG, where the fast path's approximate crop engages."""
    with Image.open(LADDER / name) as image:
        buffer = io.BytesIO()
        image.convert("RGB").resize((1200, 1200)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
