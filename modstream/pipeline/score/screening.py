"""Does a screen pay here? Fast mode's screening plan, as a pure value.

In fast mode the first pass can be a screen: an approximate crop (DCT-domain JPEG downscaling),
on a network of its own at ``screen_precision`` where every device runs that precision natively
(bf16 on AVX-512_BF16 or AMX CPUs). A screen score from ``confirm_at`` up goes round once more as
the exact crop on the exact lane (:mod:`.confirmation`). Without a cheaper precision, the
screen would cost a full f32 pass, so ``screening="auto"`` sends every image down the exact path.

What the devices run becomes known in up to three steps; each gives a new :class:`ScreeningPlan`
(with the warning to log if it overturns the last), and the scorer holds only the latest::

    ScreeningPlan.predict(config)   at construction, from the CPU flags (they may not tell)
      -> plan.confirm(runs)         once OpenVINO has opened the devices; it wins over the flags
      -> plan.compiled(...)         after compiling: a device that ignored the precision hint
                                    compiled the screen at the exact precision (the exact path)

The prediction exists so that the first images, decoded while OpenVINO loads, are routed the way
every later image will be. Nothing here imports OpenVINO, reads a clock or touches the event
loop: the devices' answers are arguments, so every path is tested on any machine.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from modstream.models.capabilities import predict_runs_precision
from modstream.models.device_spec import DeviceSpec
from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.config import ScorerConfig
from modstream.pipeline.score.lanes import LaneName

__all__ = [
    "FirstPass",
    "Revision",
    "ScreenLane",
    "ScreeningPlan",
    "Stage",
]

# (device name, precision) -> whether the device runs it natively; None: cannot tell.
PrecisionProbe = Callable[[str, str], bool | None]


class FirstPass(enum.StrEnum):
    """How fast mode decodes an image first."""

    SCREEN = "screen"  # every image: the approximate crop, confirmed from confirm_at up
    EXACT = "exact"  # every image: the exact crop, whose score is final
    PER_IMAGE = "per_image"  # the RoutePlanner chooses for each image (screening="adaptive")
    UNDECIDED = "undecided"  # screening="auto" and the CPU flags cannot tell: ask the devices


class ScreenLane(enum.StrEnum):
    """Where screens run."""

    NONE = "none"  # nowhere: exact mode, or "auto" where a screen would not be cheaper
    OWN = "own"  # a network of their own at the screen precision: cheaper, and approximate
    SHARED = "shared"  # the exact lane's workers: only the crop is approximate


class Stage(enum.StrEnum):
    """What the plan rests on."""

    PREDICTED = "predicted"  # the CPU flags
    CONFIRMED = "confirmed"  # the devices' OPTIMIZATION_CAPABILITIES
    COMPILED = "compiled"  # the precisions the networks compiled at


@dataclass(frozen=True, slots=True)
class Revision:
    """A new plan, and the warning to log when it overturns the previous one."""

    plan: ScreeningPlan
    warning: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ScreeningPlan:
    """Whether fast mode screens, which lanes exist and what each compiles.

    ``screen_native``: every device runs ``screen_precision`` natively and its exact lane uses
    another precision, so a screen network would be cheaper; ``None`` until someone can tell.
    ``screen_lane``: where screens run (before compiling: where they will run).
    """

    preprocessing: Preprocessing
    screening: str
    screen_precision: str | None
    confirm_at: float
    devices: tuple[DeviceSpec, ...]
    screen_native: bool | None
    screen_lane: ScreenLane
    stage: Stage

    @classmethod
    def predict(cls, config: ScorerConfig, flags: frozenset[str] | None = None) -> ScreeningPlan:
        """The plan the CPU flags predict (``flags``: this machine's, read from /proc/cpuinfo,
        unless given)."""

        def probe(device: str, precision: str) -> bool | None:
            return predict_runs_precision(device, precision, flags)

        unknown = cls(
            preprocessing=config.preprocessing,
            screening=config.screening,
            screen_precision=config.screen_precision,
            confirm_at=config.confirm_at,
            devices=config.devices,
            screen_native=None,
            screen_lane=ScreenLane.NONE,
            stage=Stage.PREDICTED,
        )
        return unknown._answered(probe, Stage.PREDICTED)

    def confirm(self, runs: Callable[[str, str], bool]) -> Revision:
        """The plan once the devices have answered: ``runs(device, precision)`` is whether the
        device reports the precision among its OPTIMIZATION_CAPABILITIES."""
        plan = self._answered(runs, Stage.CONFIRMED)
        warning = None
        if self.screen_native is not None and self.screen_native is not plan.screen_native:
            predicted = "support" if self.screen_native else "no support"
            warning = (
                f"the CPU flags predicted {self.screen_precision} screen {predicted}, "
                "OpenVINO says otherwise; following OpenVINO"
            )
        return Revision(plan, warning)

    def compiled(self, *, screen: Sequence[str] | None, exact: Sequence[str]) -> Revision:
        """The plan once compiled: ``screen`` and ``exact`` are the precisions each lane's
        networks compiled at, in device order (``screen`` is ``None``: none was compiled). A
        screen compiled at the exact lane's precisions would be no cheaper: it shares the exact
        lane, and ``screening="auto"`` takes the exact path after all."""
        lane = self.screen_lane
        if lane is ScreenLane.OWN and screen is not None and list(screen) == list(exact):
            lane = ScreenLane.SHARED
        plan = dataclasses.replace(self, screen_lane=lane, stage=Stage.COMPILED)
        warning = None
        if self.screen_native and lane is not ScreenLane.OWN:
            warning = (
                f"the devices did not compile the {self.screen_precision} screen; "
                "scoring on the exact path"
            )
        return Revision(plan, warning)

    @property
    def first_pass(self) -> FirstPass:
        """How images are decoded first under this plan."""
        if self.preprocessing is not Preprocessing.FAST:
            return FirstPass.EXACT
        if self.screening == "always":
            return FirstPass.SCREEN
        if self.screening == "adaptive":
            return FirstPass.PER_IMAGE
        if self.screen_native is None:
            return FirstPass.UNDECIDED
        pays = self.screen_native and self.screen_lane is ScreenLane.OWN
        return FirstPass.SCREEN if pays else FirstPass.EXACT

    @property
    def decided_by_devices(self) -> bool:
        """Whether what the devices run decides if fast mode screens (``screening="auto"``):
        the scorer logs :meth:`describe` once they have answered."""
        return self.preprocessing is Preprocessing.FAST and self.screening == "auto"

    @property
    def lane_specs(self) -> Mapping[LaneName, tuple[DeviceSpec, ...]]:
        """The device specs each lane compiles (a screen lane only where it has its own)."""
        specs = {LaneName.EXACT: self.devices}
        if self.screen_lane is ScreenLane.OWN:
            specs[LaneName.SCREEN] = tuple(
                dataclasses.replace(spec, precision=self.screen_precision) for spec in self.devices
            )
        return specs

    def lane(self, first_pass: Preprocessing) -> LaneName:
        """The lane an image decoded with ``first_pass`` goes to first: screens share the
        exact lane unless they have their own."""
        if first_pass is Preprocessing.FAST and self.screen_lane is ScreenLane.OWN:
            return LaneName.SCREEN
        return LaneName.EXACT

    def describe(self) -> str:
        """One line for the log: how images are routed under this plan."""
        precision, confirm_at = self.screen_precision, self.confirm_at
        first = self.first_pass
        if self.preprocessing is not Preprocessing.FAST:
            return "exact mode: every image takes the exact path"
        if first is FirstPass.UNDECIDED:
            return (
                f"fast mode: whether a {precision} screen pays is decided when the devices answer"
            )
        on = f"at {precision}" if self.screen_lane is ScreenLane.OWN else "on the exact network"
        if first is FirstPass.PER_IMAGE:
            return (
                f"fast mode chooses per image between a screen {on} and the exact path, "
                f"and confirms scores >= {confirm_at:g} exactly"
            )
        if self.screening == "always":
            return (
                f"fast mode screens every image {on} and confirms scores >= {confirm_at:g} exactly"
            )
        if first is FirstPass.SCREEN:
            return f"fast mode screens at {precision} and confirms scores >= {confirm_at:g} exactly"
        if self.screen_native:
            return (
                f"fast mode: the devices did not compile the {precision} screen; "
                "every image takes the exact path"
            )
        return (
            f"fast mode: the devices do not run {precision}, so a screen would cost as much as "
            "the exact pass; every image takes the exact path"
        )

    def _answered(self, probe: PrecisionProbe, stage: Stage) -> ScreeningPlan:
        """This plan with what ``probe`` says the devices run."""
        native = self._screen_native(probe)
        lane = self._planned_lane(native)
        return dataclasses.replace(self, screen_native=native, screen_lane=lane, stage=stage)

    def _screen_native(self, probe: PrecisionProbe) -> bool | None:
        """Whether every device runs the screen precision natively, unlike its exact lane."""
        precision = self.screen_precision
        if self.preprocessing is not Preprocessing.FAST or precision is None:
            return False
        answers = [
            spec.precision != precision and probe(spec.name, precision) for spec in self.devices
        ]
        if any(answer is None for answer in answers):
            return None
        return all(answers)

    def _planned_lane(self, native: bool | None) -> ScreenLane:
        """Where screens will run, before compiling."""
        if self.preprocessing is not Preprocessing.FAST:
            return ScreenLane.NONE
        if self.screening == "auto" and not native:
            return ScreenLane.NONE
        precision = self.screen_precision
        if precision is not None and any(spec.precision != precision for spec in self.devices):
            return ScreenLane.OWN
        return ScreenLane.SHARED
