"""Flood quarantine: a bank entry that suddenly matches many different images is held for people.

A bad entry (the hash of a near-blank image, a watermark, a meme template) can match a flood of
unrelated images, and every one of them would be actioned. So each entry's matches are counted
by distinct image (sha256) over a sliding window: past ``limit`` distinct images within
``window_s`` the entry is quarantined, and its further matches go to review, marked
``quarantined``, instead of being actioned. It stays quarantined until it is released (``modstream
bank release``, a record on the bank topic) or the process restarts; a released entry is not
quarantined again. Repeats of one image (the same sha256) count once.

    FloodGuard.observe(entry, sha256, now) -> Flood.CLEAR | Flood.QUARANTINED (| .STARTED: the
                                              observation that quarantined it, said once)

Pure: the caller passes the clock; memory is bounded by ``limit + 1`` sha256s per entry seen in
the window, and by the number of entries that matched anything within it.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_LIMIT", "DEFAULT_WINDOW_S", "Flood", "FloodGuard", "FloodSettings"]

Entry = tuple[str, str]  # (bank, entry id)
_PRUNE_EVERY = 1024  # observations between two sweeps of the entries idle past the window

# An entry matching more than 100 distinct images in 10 minutes: a real bank entry is a known
# image whose copies trickle in; a burst like that is a near-blank or template hash.
DEFAULT_LIMIT = 100
DEFAULT_WINDOW_S = 600.0


class Flood(enum.Enum):
    CLEAR = "clear"
    STARTED = "started"  # this match quarantined the entry
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class FloodSettings:
    limit: int = DEFAULT_LIMIT  # distinct images within the window before quarantine; 0: off
    window_s: float = DEFAULT_WINDOW_S

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"--flood-limit must be 0 (off) or more, got {self.limit}")
        if self.window_s <= 0:
            raise ValueError(f"--flood-window must be above 0 s, got {self.window_s}")


class FloodGuard:
    """The match counts of every entry that matched within the window; see the module."""

    def __init__(self, settings: FloodSettings) -> None:
        self.settings = settings
        self._seen: dict[Entry, OrderedDict[str, float]] = {}  # sha256 -> last match time
        self._quarantined: set[Entry] = set()
        self._released: set[Entry] = set()
        self._observed = 0

    def observe(self, entry: Entry, sha256: str, now: float) -> Flood:
        self._observed += 1
        if self._observed % _PRUNE_EVERY == 0:
            self.prune(now)
        if entry in self._quarantined:
            return Flood.QUARANTINED
        limit = self.settings.limit
        if limit == 0 or entry in self._released:
            return Flood.CLEAR
        seen = self._seen.setdefault(entry, OrderedDict())
        seen[sha256] = now
        seen.move_to_end(sha256)
        horizon = now - self.settings.window_s
        while seen and next(iter(seen.values())) < horizon:
            seen.popitem(last=False)
        if len(seen) <= limit:
            return Flood.CLEAR
        self._quarantined.add(entry)
        del self._seen[entry]
        return Flood.STARTED

    def release(self, entries: Iterable[Entry]) -> list[Entry]:
        """Release ``entries`` for good (the bank's curators vouched for them); those that were
        quarantined are returned."""
        released = []
        for entry in entries:
            self._released.add(entry)
            self._seen.pop(entry, None)
            if entry in self._quarantined:
                self._quarantined.discard(entry)
                released.append(entry)
        return released

    def prune(self, now: float) -> None:
        """Forget the entries with no match inside the window (``observe`` calls it every
        1024 observations)."""
        horizon = now - self.settings.window_s
        for entry in [
            e for e, seen in self._seen.items() if next(reversed(seen.values())) < horizon
        ]:
            del self._seen[entry]

    @property
    def quarantined(self) -> frozenset[Entry]:
        return frozenset(self._quarantined)
