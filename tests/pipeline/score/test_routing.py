"""Fast mode's route planner: screen where it pays, go exact where it does not."""

from __future__ import annotations

import os

from modstream.pipeline.score.routing import Route, RoutePlanner


def _feed(
    planner: RoutePlanner,
    *,
    decode: tuple[float, float],
    infer: tuple[float, float],
    confirm_rate: float,
    images: int = 200,
) -> None:
    for index in range(images):
        planner.observe_decode(Route.SCREEN, decode[0])
        planner.observe_decode(Route.EXACT, decode[1])
        planner.observe_infer(Route.SCREEN, infer[0])
        planner.observe_infer(Route.EXACT, infer[1])
        # Spread evenly: the share of True values up to any point stays close to confirm_rate.
        above = int((index + 1) * confirm_rate) > int(index * confirm_rate)
        planner.observe_score(at_or_above_floor=above)


def test_a_bf16_cpu_with_mostly_safe_images_screens() -> None:
    """A cheaper screen network and 5 % confirmations: the screen route is cheaper."""
    planner = RoutePlanner(infer_weight=2)
    _feed(planner, decode=(0.005, 0.012), infer=(0.003, 0.005), confirm_rate=0.05)
    assert planner.preferred() is Route.SCREEN
    assert planner.screen_cost() < planner.exact_cost()


def test_an_avx2_cpu_with_a_score_heavy_stream_goes_exact() -> None:
    """No cheaper precision and half the images confirmed: screening would cost more."""
    planner = RoutePlanner(infer_weight=2)
    _feed(planner, decode=(0.011, 0.028), infer=(0.025, 0.025), confirm_rate=0.5)
    assert planner.preferred() is Route.EXACT
    # Break-even on these costs: (De - Ds) / (De + w Ie) = 0.017 / 0.078, about 22 %.
    cheap = RoutePlanner(infer_weight=2)
    _feed(cheap, decode=(0.011, 0.028), infer=(0.025, 0.025), confirm_rate=0.15)
    assert cheap.preferred() is Route.SCREEN


def test_the_planner_follows_a_change_of_content() -> None:
    """When the stream turns score-heavy, the preference moves from screen to exact."""
    planner = RoutePlanner(infer_weight=2)
    _feed(planner, decode=(0.011, 0.028), infer=(0.025, 0.025), confirm_rate=0.0)
    assert planner.preferred() is Route.SCREEN
    _feed(planner, decode=(0.011, 0.028), infer=(0.025, 0.025), confirm_rate=0.6)
    assert planner.preferred() is Route.EXACT


def test_every_nth_decision_explores_the_other_route() -> None:
    """Exploration keeps both routes measured: 1 in ``explore_every`` takes the other one."""
    planner = RoutePlanner(infer_weight=2, explore_every=8)
    _feed(planner, decode=(0.011, 0.028), infer=(0.025, 0.025), confirm_rate=0.6)
    routes = [planner.choose() for _ in range(64)]
    assert routes.count(Route.SCREEN) == 8
    assert planner.statistics().exact == 56
    assert planner.statistics().preferred is Route.EXACT


def test_until_warm_the_planner_leans_exact() -> None:
    """With no final score known yet, one image in four is screened, whatever the priors."""
    planner = RoutePlanner(infer_weight=2, warmup=4)
    chosen = [planner.choose() for _ in range(8)]
    assert chosen == [Route.SCREEN, Route.EXACT, Route.EXACT, Route.EXACT] * 2
    for _ in range(4):
        planner.observe_score(at_or_above_floor=True)
    planner.observe_decode(Route.SCREEN, 0.011)
    planner.observe_decode(Route.EXACT, 0.028)
    planner.observe_infer(Route.SCREEN, 0.025)
    planner.observe_infer(Route.EXACT, 0.025)
    assert planner.choose() is Route.EXACT  # every image needed confirming: screening loses


def test_inference_on_cpus_weighs_every_core() -> None:
    """On CPUs an inference occupies every core; elsewhere the cores stay free to decode."""
    cores = float(os.cpu_count() or 1)
    assert RoutePlanner.for_devices(["CPU", "cpu"]).infer_weight == cores
    assert RoutePlanner.for_devices(["CPU", "GPU.0"]).infer_weight == 1.0
    assert RoutePlanner.for_devices(["CPU"], explore_every=5).explore_every == 5
