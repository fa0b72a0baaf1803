"""Scores already known: by URL and by content sha256, so a repost costs no fetch or inference.

A bounded LRU with a time-to-live. The clock is injected, so expiry is tested without waiting.
NSFW-as-a-Service looked images up by content hash for the same reason.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheConfig:
    max_entries: int = 100_000
    ttl_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """Live entries, and lookups answered (``hits``) or not (``misses``: absent or expired)."""

    entries: int
    hits: int
    misses: int


class TTLCache(Generic[V]):
    def __init__(self, config: CacheConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: str, value: V) -> None:
        if self._config.max_entries <= 0:
            return
        self._entries[key] = (self._clock() + self._config.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._config.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(entries=len(self._entries), hits=self.hits, misses=self.misses)
