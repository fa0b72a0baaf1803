"""Which source position may be saved: the pure decision behind connector checkpoints.

Emissions are numbered in the order a source yields them. Their events are acknowledged by the
broker in any order; a position becomes *durable* only when its emission and every earlier one
are fully acknowledged, so saving it can never skip an event that was not yet stored. The same
rule as :class:`~modstream.kafka.offsets.OffsetTracker`, for a source's own positions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Completed", "PositionTracker"]


@dataclass(slots=True)
class _Open:
    sequence: int
    remaining: int
    position: str | None


@dataclass(frozen=True, slots=True)
class Completed:
    """An emission all of whose events (and all earlier emissions') are acknowledged."""

    sequence: int
    position: str | None


class PositionTracker:
    def __init__(self) -> None:
        self._open: deque[_Open] = deque()
        self._by_sequence: dict[int, _Open] = {}
        self._next = 0
        self.durable: str | None = None  # the latest position that is safe to save

    def open(self, events: int, position: str | None) -> int:
        """Register an emission of ``events`` events; return its sequence number."""
        entry = _Open(sequence=self._next, remaining=events, position=position)
        self._next += 1
        self._open.append(entry)
        self._by_sequence[entry.sequence] = entry
        return entry.sequence

    def acknowledge(self, sequence: int) -> list[Completed]:
        """One event of ``sequence`` is acknowledged; return the emissions that completed."""
        entry = self._by_sequence[sequence]
        if entry.remaining <= 0:
            raise ValueError(f"emission {sequence} has no unacknowledged event left")
        entry.remaining -= 1
        return self.settle()

    def settle(self) -> list[Completed]:
        """Retire complete emissions from the front (an empty emission completes at once)."""
        completed: list[Completed] = []
        while self._open and self._open[0].remaining == 0:
            entry = self._open.popleft()
            del self._by_sequence[entry.sequence]
            if entry.position is not None:
                self.durable = entry.position
            completed.append(Completed(entry.sequence, entry.position))
        return completed

    @property
    def pending_emissions(self) -> int:
        return len(self._open)

    @property
    def pending_events(self) -> int:
        return sum(entry.remaining for entry in self._open)
