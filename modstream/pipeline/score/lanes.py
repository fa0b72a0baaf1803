"""A lane: one deadline batcher in front of the device workers that run one compiled network.

In ``exact`` mode the scorer has one lane. In ``fast`` mode, where screens have a network of their
own (:class:`~modstream.pipeline.score.screening.ScreenLane`), it has two: ``screen`` (approximate
crops, the screening precision) and ``exact`` (exact crops at f32, for confirmations); otherwise
screens share the exact lane. Keeping networks apart means a batch never mixes them, and each
lane learns its own batch times.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from modstream.pipeline.score.batcher import (
    BatcherStatistics,
    BatchPolicy,
    DeadlineBatcher,
    ServiceTimeEstimate,
)

if TYPE_CHECKING:
    from modstream.pipeline.score.devices import DeviceStatistics, DeviceWorker

T = TypeVar("T")


class LaneName(enum.StrEnum):
    SCREEN = "screen"
    EXACT = "exact"


@dataclass(frozen=True, slots=True)
class LaneStatistics:
    """One lane's batcher, and the workers behind it."""

    name: LaneName
    batcher: BatcherStatistics
    devices: tuple[DeviceStatistics, ...]


class Lane(Generic[T]):
    def __init__(self, name: LaneName, workers: list[DeviceWorker], policy: BatchPolicy) -> None:
        if not workers:
            raise ValueError(f"lane {name} has no device worker")
        self.name = name
        self.workers = workers
        self.batcher: DeadlineBatcher[T] = DeadlineBatcher(policy, ServiceTimeEstimate())

    @property
    def free_slots(self) -> int:
        return sum(worker.free_slots for worker in self.workers)

    def pick_worker(self) -> DeviceWorker:
        """The worker with the most idle infer requests (the first, on a tie)."""
        return max(self.workers, key=lambda worker: worker.free_slots)

    def statistics(self) -> LaneStatistics:
        devices = tuple(worker.statistics() for worker in self.workers)
        return LaneStatistics(self.name, self.batcher.statistics(), devices)
