"""Which offsets may be committed: out-of-order completion, in-order commits. Pure, no I/O.

Records of one partition finish in any order (a small image overtakes a large one). An offset is
committable only when it and every earlier consumed offset of its partition have their output
acknowledged by the broker; the commit position is then one past the last such offset, as Kafka
expects. Offsets may have gaps (compacted topics, transaction markers), so the tracker follows the
offsets actually consumed rather than counting up by one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(frozen=True, slots=True)
class OffsetStatistics:
    partitions: int
    in_flight: int
    finished_ahead: int  # finished records waiting for an earlier offset before they commit


@dataclass(slots=True)
class _PartitionState:
    position: int  # the next offset to commit: everything consumed below it is acknowledged
    committed: int  # the position last committed (at first: the first offset consumed)
    consumed: deque[int] = field(default_factory=deque)  # in flight or done, increasing
    done: set[int] = field(default_factory=set)


class OffsetTracker(Generic[P]):
    def __init__(self) -> None:
        self._partitions: dict[P, _PartitionState] = {}

    def start(self, partition: P, offset: int) -> None:
        """A record at ``offset`` was consumed and is now in flight."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _PartitionState(position=offset, committed=offset)
        if state.consumed and offset <= state.consumed[-1]:
            # The consumer went back (a seek, an offset reset): start over from this offset.
            state = self._partitions[partition] = _PartitionState(position=offset, committed=offset)
        state.consumed.append(offset)

    def finish(self, partition: P, offset: int) -> None:
        """The output for ``offset`` is acknowledged. Unknown partitions (revoked) are ignored."""
        state = self._partitions.get(partition)
        if state is None or offset < state.position:
            return
        state.done.add(offset)
        while state.consumed and state.consumed[0] in state.done:
            finished = state.consumed.popleft()
            state.done.discard(finished)
            state.position = finished + 1

    def position(self, partition: P) -> int | None:
        """The next offset to commit of ``partition`` (None: not tracked)."""
        state = self._partitions.get(partition)
        return None if state is None else state.position

    def committable(self) -> dict[P, int]:
        """Positions that moved since the last :meth:`mark_committed`."""
        return {
            partition: state.position
            for partition, state in self._partitions.items()
            if state.position != state.committed
        }

    def mark_committed(self, positions: dict[P, int]) -> None:
        for partition, position in positions.items():
            state = self._partitions.get(partition)
            if state is not None:
                state.committed = position

    def forget(self, partitions: Iterable[P]) -> None:
        """Stop tracking revoked partitions; their unfinished records will be replayed."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    @property
    def in_flight(self) -> int:
        return sum(len(s.consumed) - len(s.done) for s in self._partitions.values())

    def statistics(self) -> OffsetStatistics:
        return OffsetStatistics(
            partitions=len(self._partitions),
            in_flight=self.in_flight,
            finished_ahead=sum(len(s.done) for s in self._partitions.values()),
        )
