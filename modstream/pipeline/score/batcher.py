"""When to send a batch to a device: a pure decision over the queue, the clock and free devices.

Triton's dynamic batcher and Ray Serve's ``@serve.batch`` wait for a full batch or a fixed delay.
:class:`DeadlineBatcher` does that and two things more: each item carries its own deadline, and a
batch leaves early when waiting any longer would make the earliest deadline in the queue miss,
given what a batch of that size is expected to take (:class:`ServiceTimeEstimate`); and it learns
the gap between arrivals, so at light load, when the next item is not expected before the delay
runs out, a batch leaves at once instead of waiting for company that will not come.

Nothing here touches asyncio or a device. The scorer's dispatch loop calls :meth:`decide` and acts
on the answer, so the policy is tested with plain numbers.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchPolicy:
    """``max_delay_s``: the longest the oldest queued item waits for company before it goes."""

    max_batch_size: int = 8
    max_delay_s: float = 0.010

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if self.max_delay_s < 0:
            raise ValueError("max_delay_s must not be negative")


class ServiceTimeEstimate:
    """Expected seconds for a batch of ``n``: ``overhead_s + per_item_s * n``, learned online.

    ``per_item_s`` follows an exponentially weighted average of observed batches, so the estimate
    tracks the device actually in use (and the load on it) rather than a figure from a data sheet.
    """

    def __init__(
        self, *, per_item_s: float = 0.010, overhead_s: float = 0.002, smoothing: float = 0.2
    ) -> None:
        self.per_item_s = per_item_s
        self.overhead_s = overhead_s
        self._smoothing = smoothing

    def estimate(self, n: int) -> float:
        return self.overhead_s + self.per_item_s * n

    def observe(self, n: int, seconds: float) -> None:
        if n <= 0 or seconds <= 0:
            return
        sample = max(seconds - self.overhead_s, 0.0) / n
        self.per_item_s += self._smoothing * (sample - self.per_item_s)

    def __repr__(self) -> str:
        return (
            f"ServiceTimeEstimate(per_item_s={self.per_item_s:.4f}, overhead_s={self.overhead_s})"
        )


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send the ``count`` items with the earliest deadlines now."""

    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Nothing to send yet; decide again at ``when`` (or sooner, if something changes)."""

    when: float


@dataclass(frozen=True, slots=True)
class WaitForChange:
    """Nothing to send until an item arrives or a device frees up."""

    reason: str


Decision = Dispatch | WaitUntil | WaitForChange


@dataclass(frozen=True, slots=True)
class BatcherStatistics:
    """The queue and what the batcher has learned: seconds per item, and between arrivals."""

    queued: int
    per_item_s: float
    arrival_gap_s: float


@dataclass(order=True, slots=True)
class _Entry(Generic[T]):
    deadline: float
    seq: int
    arrival: float = field(compare=False)
    item: T = field(compare=False)


class DeadlineBatcher(Generic[T]):
    """A queue ordered by deadline (earliest first) plus the dispatch rule."""

    def __init__(self, policy: BatchPolicy, service: ServiceTimeEstimate) -> None:
        self.policy = policy
        self.service = service
        self._heap: list[_Entry[T]] = []
        self._seq = itertools.count()
        self._last_arrival: float | None = None
        self._gap_s = 0.0  # moving average of the time between arrivals; 0 until two arrived
        self._gap_smoothing = 0.2

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, item: T, *, now: float, deadline: float) -> None:
        heapq.heappush(self._heap, _Entry(deadline, next(self._seq), now, item))
        if self._last_arrival is not None:
            gap = max(now - self._last_arrival, 0.0)
            first = self._gap_s == 0.0
            self._gap_s = gap if first else self._gap_s + self._gap_smoothing * (gap - self._gap_s)
        self._last_arrival = now

    def discard(self, predicate: Callable[[T], bool]) -> int:
        """Drop queued items for which ``predicate`` is true (callers that gave up)."""
        kept = [entry for entry in self._heap if not predicate(entry.item)]
        dropped = len(self._heap) - len(kept)
        if dropped:
            heapq.heapify(kept)
            self._heap = kept
        return dropped

    def decide(self, *, now: float, free_slots: int, flush: bool = False) -> Decision:
        """Whether to dispatch now; ``flush`` sends whatever is queued (shutdown drain)."""
        if not self._heap:
            return WaitForChange("queue empty")
        if free_slots <= 0:
            return WaitForChange("no free device")
        size = min(len(self._heap), self.policy.max_batch_size)
        if size == self.policy.max_batch_size:
            return Dispatch(size, "full")
        if flush:
            return Dispatch(size, "flush")
        oldest_arrival = min(entry.arrival for entry in self._heap)
        max_delay_at = oldest_arrival + self.policy.max_delay_s
        # Waiting admits at least one more item, so budget for a batch one larger than now.
        latest_start = self._heap[0].deadline - self.service.estimate(size + 1)
        if now >= latest_start:
            return Dispatch(size, "deadline")
        if now >= max_delay_at:
            return Dispatch(size, "max_delay")
        if self._last_arrival is not None and self._last_arrival + self._gap_s >= max_delay_at:
            return Dispatch(size, "no company expected")
        return WaitUntil(min(max_delay_at, latest_start))

    def take(self, count: int) -> list[T]:
        """Remove and return the ``count`` items with the earliest deadlines."""
        return [heapq.heappop(self._heap).item for _ in range(min(count, len(self._heap)))]

    def statistics(self) -> BatcherStatistics:
        return BatcherStatistics(
            queued=len(self._heap), per_item_s=self.service.per_item_s, arrival_gap_s=self._gap_s
        )
