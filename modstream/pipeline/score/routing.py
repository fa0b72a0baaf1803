"""Fast mode's route per image: screen first, or go straight to the exact path. A pure decision.

Screening pays when the images it lets through unconfirmed save more than the confirmations
cost. With per-image costs (core-seconds) ``Ds``/``De`` to decode for the screen/exact path,
``Is``/``Ie`` to infer on the screen/exact network, and ``p`` the share of images whose screen
must be confirmed, the screen route costs ``Ds + Is + p (De + Ie)`` and the exact route
``De + Ie``. On a CPU with bf16 and mostly-safe content (``Is`` ≈ ``Ie``/2, ``p`` ≈ 5 %) screening
wins by far; on an AVX2-only CPU (``Is`` = ``Ie``: no cheaper precision) with a score-heavy stream
(``p`` ≈ 50 %) it loses, and the exact route is both faster and final.

:class:`RoutePlanner` learns the four costs and ``p`` from what the scorer measures (moving
averages) and picks the cheaper route; every ``explore_every``-th image takes the other route so
the costs of both stay current. ``p`` is learned from every final score, whichever route produced
it: an exact score at or above the confirmation floor is an image a screen would have confirmed.
Both routes give the same decisions (a confirmed screen *is* the exact score; an unconfirmed one
lies below the floor), so the choice changes speed, never a result's fidelity bar.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Route", "RoutePlanner", "RouteStatistics"]


class Route(enum.StrEnum):
    SCREEN = "screen"
    EXACT = "exact"


@dataclass(frozen=True, slots=True)
class RouteStatistics:
    screened: int
    exact: int
    confirm_rate: float  # p: share of final scores at or above the confirmation floor
    screen_cost_s: float  # expected core-seconds per image on the screen route
    exact_cost_s: float
    preferred: Route


class _Average:
    """An exponential moving average that starts from a prior until it has data."""

    __slots__ = ("alpha", "seen", "value")

    def __init__(self, prior: float, alpha: float) -> None:
        self.value = prior
        self.alpha = alpha
        self.seen = 0

    def add(self, sample: float) -> None:
        self.seen += 1
        # The first samples weigh more, so a few observations replace the prior quickly.
        weight = max(self.alpha, 1.0 / self.seen)
        self.value += weight * (sample - self.value)


class RoutePlanner:
    def __init__(
        self,
        *,
        infer_weight: float = 1.0,
        explore_every: int = 64,
        warmup: int = 8,
        alpha: float = 0.05,
    ) -> None:
        """``infer_weight``: cores an inference occupies, to put its wall time in the same
        core-seconds as a decode (which runs on one core). Until ``warmup`` final scores are
        known (a batch job decodes its first images while the network is still compiling), one
        image in four is screened: a wrong screen costs more (a screen, then the exact path) than
        a wrong exact route (the decode shortcut not taken), so the blind guess leans exact."""
        self.infer_weight = infer_weight
        self.explore_every = explore_every
        self.warmup = warmup
        # Neutral priors, replaced by the first measurements (see _Average).
        self._decode = {Route.SCREEN: _Average(0.010, alpha), Route.EXACT: _Average(0.025, alpha)}
        self._infer = {Route.SCREEN: _Average(0.010, alpha), Route.EXACT: _Average(0.010, alpha)}
        self._confirm = _Average(0.05, alpha)
        self._counts = {Route.SCREEN: 0, Route.EXACT: 0}
        self._decisions = 0

    @classmethod
    def for_devices(cls, devices: Sequence[str], *, explore_every: int = 64) -> RoutePlanner:
        """A planner for these devices: an inference on CPUs occupies every core, elsewhere one
        unit (the device works while the cores decode)."""
        on_cpu = all(name.upper().startswith("CPU") for name in devices)
        infer_weight = float(os.cpu_count() or 1) if on_cpu else 1.0
        return cls(infer_weight=infer_weight, explore_every=explore_every)

    def choose(self) -> Route:
        self._decisions += 1
        if self._confirm.seen < self.warmup:
            chosen = Route.SCREEN if self._decisions % 4 == 1 else Route.EXACT
            self._counts[chosen] += 1
            return chosen
        preferred = self.preferred()
        if self.explore_every and self._decisions % self.explore_every == 0:
            preferred = Route.EXACT if preferred is Route.SCREEN else Route.SCREEN
        self._counts[preferred] += 1
        return preferred

    def preferred(self) -> Route:
        return Route.SCREEN if self.screen_cost() < self.exact_cost() else Route.EXACT

    def screen_cost(self) -> float:
        first = self._decode[Route.SCREEN].value + self._weighted(Route.SCREEN)
        return first + self._confirm.value * self.exact_cost()

    def exact_cost(self) -> float:
        return self._decode[Route.EXACT].value + self._weighted(Route.EXACT)

    def _weighted(self, route: Route) -> float:
        return self._infer[route].value * self.infer_weight

    def observe_decode(self, route: Route, seconds: float) -> None:
        self._decode[route].add(seconds)

    def observe_infer(self, route: Route, seconds_per_image: float) -> None:
        self._infer[route].add(seconds_per_image)

    def observe_score(self, *, at_or_above_floor: bool) -> None:
        self._confirm.add(1.0 if at_or_above_floor else 0.0)

    def statistics(self) -> RouteStatistics:
        return RouteStatistics(
            screened=self._counts[Route.SCREEN],
            exact=self._counts[Route.EXACT],
            confirm_rate=self._confirm.value,
            screen_cost_s=self.screen_cost(),
            exact_cost_s=self.exact_cost(),
            preferred=self.preferred(),
        )
