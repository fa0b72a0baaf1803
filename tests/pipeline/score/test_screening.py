"""Fast mode's screening plan, decided from CPU flags and device answers given as plain values."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from scorerconfigs import scorer_config

from modstream.models.device_spec import DeviceSpec
from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.config import ScorerConfig
from modstream.pipeline.score.lanes import LaneName
from modstream.pipeline.score.screening import (
    FirstPass,
    ScreeningPlan,
    ScreenLane,
    Stage,
)

AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
BF16 = AVX2 | {"avx512f", "avx512_bf16"}
UNKNOWN: frozenset[str] = frozenset()  # no flags to read: only OpenVINO can tell


def fast(**overrides: Any) -> ScorerConfig:
    """Fast mode, never compiled (the plans here are decided before any device answers)."""
    return scorer_config(None, **{"preprocessing": Preprocessing.FAST, **overrides})


def runs(answer: bool) -> Callable[[str, str], bool]:
    """A device probe that answers ``answer`` for every device and precision."""
    return lambda device, precision: answer


def refuses(device: str, precision: str) -> bool:
    raise AssertionError(f"the devices were asked about {precision} on {device}")


def test_an_avx2_cpu_takes_the_exact_path_for_every_image_in_auto_mode() -> None:
    """No bf16 in the flags: decided at construction, no screen lane, nothing extra compiled."""
    plan = ScreeningPlan.predict(fast(), AVX2)
    assert plan.stage is Stage.PREDICTED
    assert plan.first_pass is FirstPass.EXACT
    assert plan.screen_lane is ScreenLane.NONE
    assert dict(plan.lane_specs) == {LaneName.EXACT: (DeviceSpec(),)}
    assert plan.describe() == (
        "fast mode: the devices do not run bf16, so a screen would cost as much as the exact "
        "pass; every image takes the exact path"
    )
    confirmed = plan.confirm(runs(False))
    assert confirmed.warning is None
    assert confirmed.plan.first_pass is FirstPass.EXACT


def test_a_bf16_cpu_screens_at_bf16_and_confirms_exactly() -> None:
    """bf16 in the flags: screens on a bf16 network of their own, confirmed on the f32 lane."""
    plan = ScreeningPlan.predict(fast(), BF16)
    assert plan.first_pass is FirstPass.SCREEN
    assert plan.screen_lane is ScreenLane.OWN
    assert dict(plan.lane_specs) == {
        LaneName.EXACT: (DeviceSpec(precision="f32"),),
        LaneName.SCREEN: (DeviceSpec(precision="bf16"),),
    }
    assert plan.lane(Preprocessing.FAST) is LaneName.SCREEN
    assert plan.lane(Preprocessing.EXACT) is LaneName.EXACT  # confirmations
    confirmed = plan.confirm(runs(True))
    assert confirmed.warning is None
    compiled = confirmed.plan.compiled(screen=["bf16"], exact=["f32"])
    assert compiled.warning is None
    assert compiled.plan.stage is Stage.COMPILED
    assert compiled.plan.first_pass is FirstPass.SCREEN
    assert compiled.plan.describe() == (
        "fast mode screens at bf16 and confirms scores >= 0.05 exactly"
    )


@pytest.mark.parametrize("answer", [True, False], ids=["devices-run-bf16", "devices-do-not"])
def test_flags_that_cannot_tell_leave_the_decision_to_the_devices(answer: bool) -> None:
    """Without flags the first pass waits for OpenVINO, whose answer is taken without warning."""
    plan = ScreeningPlan.predict(fast(), UNKNOWN)
    assert plan.first_pass is FirstPass.UNDECIDED
    assert plan.screen_native is None
    assert "decided when the devices answer" in plan.describe()
    confirmed = plan.confirm(runs(answer))
    assert confirmed.warning is None
    assert confirmed.plan.stage is Stage.CONFIRMED
    assert confirmed.plan.first_pass is (FirstPass.SCREEN if answer else FirstPass.EXACT)
    assert (LaneName.SCREEN in confirmed.plan.lane_specs) is answer


def test_a_device_the_flags_cannot_judge_makes_the_prediction_undecided() -> None:
    """A CPU with bf16 next to a GPU: the flags speak for the CPU only, so nobody decides yet."""
    plan = ScreeningPlan.predict(fast(devices=(DeviceSpec(), DeviceSpec(name="GPU.0"))), BF16)
    assert plan.first_pass is FirstPass.UNDECIDED


def test_openvino_overrules_a_prediction_of_bf16_with_a_warning() -> None:
    """The flags promised bf16, OpenVINO denies it: the exact path, and screens already decoded
    are sent to the exact lane (there is no screen lane to take them)."""
    predicted = ScreeningPlan.predict(fast(), BF16)
    revision = predicted.confirm(runs(False))
    assert revision.warning == (
        "the CPU flags predicted bf16 screen support, OpenVINO says otherwise; following OpenVINO"
    )
    assert revision.plan.first_pass is FirstPass.EXACT
    assert revision.plan.screen_lane is ScreenLane.NONE
    assert LaneName.SCREEN not in revision.plan.lane_specs
    assert revision.plan.lane(Preprocessing.FAST) is LaneName.EXACT


def test_openvino_overrules_a_prediction_of_no_bf16_with_a_warning() -> None:
    """The flags saw no bf16, OpenVINO reports it: screening starts with the confirmed plan."""
    revision = ScreeningPlan.predict(fast(), AVX2).confirm(runs(True))
    assert revision.warning == (
        "the CPU flags predicted bf16 screen no support, OpenVINO says otherwise; "
        "following OpenVINO"
    )
    assert revision.plan.first_pass is FirstPass.SCREEN
    assert LaneName.SCREEN in revision.plan.lane_specs


def test_a_screen_compiled_at_the_exact_precision_takes_the_exact_path() -> None:
    """The device ignored the bf16 hint: the screen shares the exact lane and auto goes exact."""
    confirmed = ScreeningPlan.predict(fast(), BF16).confirm(runs(True)).plan
    revision = confirmed.compiled(screen=["f32"], exact=["f32"])
    assert revision.warning == (
        "the devices did not compile the bf16 screen; scoring on the exact path"
    )
    assert revision.plan.screen_lane is ScreenLane.SHARED
    assert revision.plan.first_pass is FirstPass.EXACT
    assert revision.plan.lane(Preprocessing.FAST) is LaneName.EXACT
    assert "did not compile the bf16 screen" in revision.plan.describe()


def test_one_device_compiling_the_screen_keeps_the_screen_lane() -> None:
    """Two devices, one honouring bf16: the screen lane stays its own (it is cheaper there)."""
    devices = (DeviceSpec(), DeviceSpec(name="CPU", num_requests=1))
    confirmed = ScreeningPlan.predict(fast(devices=devices), BF16).confirm(runs(True)).plan
    revision = confirmed.compiled(screen=["bf16", "f32"], exact=["f32", "f32"])
    assert revision.warning is None
    assert revision.plan.screen_lane is ScreenLane.OWN


@pytest.mark.parametrize(
    ("flags", "compiled", "lane"),
    [
        (BF16, "bf16", ScreenLane.OWN),
        (AVX2, "f32", ScreenLane.SHARED),  # the screen network compiled f32: one lane
    ],
    ids=["bf16-cpu", "avx2-cpu"],
)
def test_screening_always_screens_every_image(
    flags: frozenset[str], compiled: str, lane: ScreenLane
) -> None:
    """screening="always" screens whatever the devices run, on a bf16 network where it exists
    and on the exact lane's workers where it does not, without a warning."""
    plan = ScreeningPlan.predict(fast(screening="always"), flags)
    assert plan.first_pass is FirstPass.SCREEN
    assert LaneName.SCREEN in plan.lane_specs  # asked for: compiled f32 where bf16 is missing
    confirmed = plan.confirm(runs(flags is BF16))
    revision = confirmed.plan.compiled(screen=[compiled], exact=["f32"])
    assert revision.warning is None
    assert revision.plan.first_pass is FirstPass.SCREEN
    assert revision.plan.screen_lane is lane
    expected = LaneName.SCREEN if lane is ScreenLane.OWN else LaneName.EXACT
    assert revision.plan.lane(Preprocessing.FAST) is expected


@pytest.mark.parametrize("flags", [BF16, AVX2, UNKNOWN], ids=["bf16-cpu", "avx2-cpu", "unknown"])
def test_screening_adaptive_leaves_the_route_to_the_planner(flags: frozenset[str]) -> None:
    """screening="adaptive" decides per image whatever the flags say: never undecided."""
    plan = ScreeningPlan.predict(fast(screening="adaptive"), flags)
    assert plan.first_pass is FirstPass.PER_IMAGE
    assert plan.screen_lane is ScreenLane.OWN
    assert plan.describe().startswith("fast mode chooses per image between a screen at bf16")


def test_an_always_screen_without_a_screen_precision_shares_the_exact_lane() -> None:
    """screen_precision=None: the screen is only the approximate crop, on the exact network."""
    plan = ScreeningPlan.predict(fast(screening="always", screen_precision=None), BF16)
    assert plan.screen_lane is ScreenLane.SHARED
    assert dict(plan.lane_specs) == {LaneName.EXACT: (DeviceSpec(),)}
    assert plan.describe() == (
        "fast mode screens every image on the exact network and confirms scores >= 0.05 exactly"
    )


def test_auto_without_a_screen_precision_takes_the_exact_path_without_asking() -> None:
    """screen_precision=None in auto mode: nothing would be cheaper, and no device is asked."""
    plan = ScreeningPlan.predict(fast(screen_precision=None), BF16)
    assert plan.first_pass is FirstPass.EXACT
    revision = plan.confirm(refuses)
    assert revision.warning is None
    assert revision.plan.first_pass is FirstPass.EXACT


def test_an_exact_lane_already_at_the_screen_precision_is_not_cheaper() -> None:
    """The exact lane asks for bf16 itself: a bf16 screen saves nothing, so auto goes exact."""
    config = fast(devices=(DeviceSpec(precision="bf16"),))
    plan = ScreeningPlan.predict(config, BF16).confirm(runs(True)).plan
    assert plan.first_pass is FirstPass.EXACT
    assert plan.screen_lane is ScreenLane.NONE


@pytest.mark.parametrize("screening", ["auto", "always", "adaptive"])
@pytest.mark.parametrize("flags", [BF16, AVX2, UNKNOWN], ids=["bf16-cpu", "avx2-cpu", "unknown"])
def test_exact_mode_never_screens(screening: str, flags: frozenset[str]) -> None:
    """Exact preprocessing has one lane and one path, whatever the flags and the devices say."""
    config = fast(preprocessing=Preprocessing.EXACT, screening=screening)
    plan = ScreeningPlan.predict(config, flags)
    revision = plan.confirm(refuses)
    compiled = revision.plan.compiled(screen=None, exact=["f32"])
    for step in (plan, revision.plan, compiled.plan):
        assert step.first_pass is FirstPass.EXACT
        assert step.screen_lane is ScreenLane.NONE
        assert dict(step.lane_specs) == {LaneName.EXACT: (DeviceSpec(),)}
        assert step.lane(Preprocessing.EXACT) is LaneName.EXACT
        assert not step.decided_by_devices
    assert revision.warning is None and compiled.warning is None
    assert plan.describe() == "exact mode: every image takes the exact path"


def test_the_plan_and_the_scorer_module_load_without_openvino() -> None:
    """Building a config, a plan and the Scorer class imports no OpenVINO: the first images
    decode while it loads."""
    code = (
        "import sys\n"
        "from modstream.pipeline.score.scorer import Scorer, ScorerConfig\n"
        "from modstream.pipeline.score.screening import ScreeningPlan\n"
        "ScreeningPlan.predict(ScorerConfig(cache_dir=None))\n"
        "print('openvino' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
