"""Compiling: open the devices, compile each lane's network, and give every network a worker.

Runs while the first images decode (:meth:`~modstream.pipeline.score.scorer.Scorer.start`)::

    open_devices    (a thread)  import OpenVINO, ask what the devices run -> ScreeningPlan.confirm
    compile_lanes   (a thread)  compile the plan's lane specs while a second thread checks the
                                weights' digest                        -> ScreeningPlan.compiled
    make_workers    (the loop)  one DeviceWorker per network the final plan uses

OpenVINO is imported inside the functions, never with this module: a caller builds its scorer
and starts decoding while the runtime loads.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.models.weights import ModelWeights, locate_weights, verify_weights
from modstream.pipeline.score.config import ScorerConfig
from modstream.pipeline.score.lanes import LaneName
from modstream.pipeline.score.screening import Revision, ScreeningPlan, ScreenLane

if TYPE_CHECKING:
    from modstream.models.network import CompiledNetwork
    from modstream.pipeline.score.devices import DeviceWorker

__all__ = ["CompiledLanes", "compile_lanes", "make_workers", "open_devices"]


@dataclass(frozen=True, slots=True)
class CompiledLanes:
    """The verified weights and each lane's networks, one per device spec, in spec order."""

    weights: ModelWeights
    networks: dict[LaneName, tuple[CompiledNetwork, ...]]

    def precisions(self, lane: LaneName) -> tuple[str, ...] | None:
        """What the lane's networks compiled at (``None``: the lane was not compiled)."""
        networks = self.networks.get(lane)
        return None if networks is None else tuple(network.precision for network in networks)

    def revise(self, plan: ScreeningPlan) -> Revision:
        """``plan`` told what the devices actually compiled."""
        screen, exact = self.precisions(LaneName.SCREEN), self.precisions(LaneName.EXACT)
        return plan.compiled(screen=screen, exact=exact or ())


def open_devices(cache_dir: Path | None, plan: ScreeningPlan) -> tuple[Any, Revision]:
    """Import OpenVINO (on a thread: a caller can decode meanwhile) and ask the devices what
    they run: the core to compile with, and ``plan`` confirmed by their answers."""
    from modstream.models.network import make_core, runs_precision

    core = make_core(cache_dir)
    return core, plan.confirm(partial(runs_precision, core))


def compile_lanes(config: ScorerConfig, core: Any, plan: ScreeningPlan) -> CompiledLanes:
    """Verify the weights (on a second thread: hashlib releases the GIL) while compiling."""
    from modstream.models.network import compile_network, prepared_model

    weights = locate_weights(config.weights_path)
    batch = config.batch.max_batch_size
    with ThreadPoolExecutor(1, thread_name_prefix="modstream-verify") as verifier:
        verified = verifier.submit(verify_weights, weights)
        model = prepared_model(core, weights, config.cache_dir)
        networks = {
            lane: tuple(compile_network(core, model, spec, max_batch_size=batch) for spec in specs)
            for lane, specs in plan.lane_specs.items()
        }
        verified.result()  # a mismatch raises here, before anything is scored
    return CompiledLanes(weights, networks)


def make_workers(
    compiled: CompiledLanes, plan: ScreeningPlan, loop: asyncio.AbstractEventLoop
) -> dict[LaneName, list[DeviceWorker]]:
    """A worker per network the compiled ``plan`` uses: the exact lane's, then the screen's
    where it has its own (a screen compiled at the exact precision is dropped: no second copy)."""
    from modstream.pipeline.score.devices import DeviceWorker

    lanes = [LaneName.EXACT]
    if plan.screen_lane is ScreenLane.OWN:
        lanes.append(LaneName.SCREEN)
    return {
        lane: [DeviceWorker(network, loop) for network in compiled.networks[lane]] for lane in lanes
    }
