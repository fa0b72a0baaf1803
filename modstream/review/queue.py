"""The review queue's state: pending items in arrival order, leases, decisions. Pure, no I/O.

An item shown to a reviewer is *leased* to them for ``lease_s``: others do not get it until the
lease runs out, so two people do not judge the same image. A decision moves an item out of the
queue; its id is remembered (a bounded number of them), so a second decision is refused and a
replayed record of a decided item is dropped at once. Items are keyed by their result record's
``id``; one id met at two offsets (a replay) is one item, and deciding it finishes both offsets.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from modstream.errors import AlreadyDecided, UnknownItem

__all__ = ["Item", "QueueStatistics", "ReviewQueue"]

P = TypeVar("P", bound=Hashable)  # a partition


class _State(enum.Enum):
    PENDING = "pending"
    DECIDING = "deciding"  # its decision is on the way to the broker


@dataclass(slots=True)
class Item(Generic[P]):
    id: str
    record: dict[str, Any]
    positions: list[tuple[P, int]]  # (partition, offset) of every copy consumed
    sequence: int  # arrival order
    state: _State = _State.PENDING
    leased_to: str | None = None
    lease_until: float = 0.0

    def leased_by_other(self, reviewer: str, now: float) -> bool:
        return self.leased_to not in (None, reviewer) and now < self.lease_until


@dataclass(slots=True)
class ReviewQueue(Generic[P]):
    lease_s: float = 300.0
    remember_decided: int = 100_000
    _items: dict[str, Item[P]] = field(default_factory=dict)
    _decided: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _sequence: int = 0
    _replays_dropped: int = 0

    def __len__(self) -> int:
        """Items waiting for a decision (those being recorded included)."""
        return len(self._items)

    def add(self, item_id: str, record: dict[str, Any], partition: P, offset: int) -> bool:
        """Queue a consumed record. False when its id is decided already: the caller finishes
        the offset at once, nothing is shown."""
        if item_id in self._decided:
            self._replays_dropped += 1
            return False
        known = self._items.get(item_id)
        if known is not None:
            known.positions.append((partition, offset))
            return True
        self._sequence += 1
        self._items[item_id] = Item(item_id, record, [(partition, offset)], self._sequence)
        return True

    def remember(self, decided: Iterable[str]) -> None:
        """Ids decided before this process started (read back from the reviewed topic)."""
        for item_id in decided:
            self._mark_decided(item_id)

    def get(self, item_id: str) -> Item[P] | None:
        """The waiting item with this id (being decided included), if any."""
        return self._items.get(item_id)

    def lease(self, reviewer: str, limit: int, now: float) -> list[Item[P]]:
        """Up to ``limit`` pending items for ``reviewer``, oldest first: theirs already, free, or
        with a lapsed lease. Each is (re)leased to them until ``now + lease_s``."""
        chosen: list[Item[P]] = []
        for item in sorted(self._items.values(), key=_age):
            if len(chosen) >= limit:
                break
            if item.state is not _State.PENDING or item.leased_by_other(reviewer, now):
                continue
            item.leased_to, item.lease_until = reviewer, now + self.lease_s
            chosen.append(item)
        return chosen

    def begin_decision(self, item_id: str) -> Item[P]:
        """Claim the item for a decision: refused for an unknown id, or one decided or being
        decided. Follow with :meth:`finish_decision` or :meth:`abandon_decision`."""
        if item_id in self._decided:
            raise AlreadyDecided(f"item {item_id!r} has been decided already")
        item = self._items.get(item_id)
        if item is None:
            raise UnknownItem(f"no item {item_id!r} is waiting for review here")
        if item.state is _State.DECIDING:
            raise AlreadyDecided(f"item {item_id!r} is being decided by someone else")
        item.state = _State.DECIDING
        return item

    def finish_decision(self, item_id: str) -> list[tuple[P, int]]:
        """The decision is stored: the item leaves the queue; returns the offsets to finish."""
        item = self._items.pop(item_id)
        self._mark_decided(item_id)
        return item.positions

    def _mark_decided(self, item_id: str) -> None:
        self._decided[item_id] = None
        self._decided.move_to_end(item_id)
        while len(self._decided) > self.remember_decided:
            self._decided.popitem(last=False)

    def abandon_decision(self, item_id: str) -> None:
        """Storing the decision failed: the item waits again."""
        item = self._items.get(item_id)
        if item is not None:
            item.state = _State.PENDING

    def forget(self, partitions: Iterable[P]) -> int:
        """Drop pending items of partitions this process no longer owns (their next owner
        replays them); returns how many went."""
        gone = set(partitions)
        dropped = [key for key, item in self._items.items()
                   if any(position[0] in gone for position in item.positions)]  # fmt: skip
        for key in dropped:
            del self._items[key]
        return len(dropped)

    def statistics(self, now: float) -> QueueStatistics:
        leased = sum(1 for item in self._items.values() if now < item.lease_until)
        oldest = min((_age(item)[0] for item in self._items.values()), default=now)
        return QueueStatistics(
            pending=len(self._items),
            leased=leased,
            oldest_age_s=max(now - oldest, 0.0) if oldest != float("inf") else 0.0,
            remembered_decisions=len(self._decided),
            replays_dropped=self._replays_dropped,
        )


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    pending: int  # waiting for a decision (being recorded included)
    leased: int  # of those, held by a reviewer's lease now
    oldest_age_s: float  # now - the oldest waiting item's observed_at (0 when none is dated)
    remembered_decisions: int  # ids known to be decided (bounded)
    replays_dropped: int  # records of decided items consumed again and not shown


def _age(item: Item[Any]) -> tuple[float, int]:
    """Oldest first: the event's observed_at, then arrival order."""
    observed = item.record.get("observed_at")
    return (float(observed) if isinstance(observed, int | float) else float("inf"), item.sequence)
