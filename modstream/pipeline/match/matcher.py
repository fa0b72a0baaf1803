"""Look an image's PDQ hash up in every bank: the known-content stage of the moderation step.

    PdqHash -> per bank: quality gate -> the hash (and its rotations, if the bank asks)
            -> HashIndex.nearest within the bank's distance -> the best Match, or None

A bank can have two parts, each with its own index: the file given for it and the entries the
bank topic holds under its name; both are looked up. A match in a ``match`` bank wins over one in
a ``safe`` bank (known content is never waved through by a negative bank), then the smaller
distance wins. Indexes are immutable: a reload or a topic change builds a new one off the event
loop (:meth:`LoadedBank.build`) and :meth:`Matcher.install` swaps it in, so a lookup never sees a
half-built bank.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from modstream.models.pdq import VARIANTS, PdqHash
from modstream.pipeline.match.banks import BankAction, BankEntries, BankSettings
from modstream.pipeline.match.index import HashIndex

__all__ = ["BankPart", "LoadedBank", "Match", "Matcher", "MatcherStatistics"]


class BankPart(enum.StrEnum):
    FILE = "file"
    TOPIC = "topic"


@dataclass(frozen=True, kw_only=True, slots=True)
class Match:
    bank: str
    id: str
    distance: int
    quality: int  # the image hash's quality
    action: BankAction
    variant: str | None = None  # which rotation or mirror of the image matched; None: as it is
    quarantined: bool = False  # the entry matched a flood of images: held for review (flood.py)

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "bank": self.bank, "id": self.id, "distance": self.distance,
            "quality": self.quality, "action": self.action.value,
        }  # fmt: skip
        if self.variant is not None:
            fields["variant"] = self.variant
        if self.quarantined:
            fields["quarantined"] = True
        return fields


@dataclass(frozen=True, slots=True)
class LoadedBank:
    entries: BankEntries
    index: HashIndex

    @classmethod
    def build(cls, entries: BankEntries) -> LoadedBank:
        """Index ``entries``: CPU work (seconds for millions of hashes), so off the event loop."""
        return cls(entries, HashIndex.build(entries.hashes))


@dataclass(frozen=True, kw_only=True, slots=True)
class MatcherStatistics:
    lookups: int
    matches: dict[str, int]  # by bank
    sizes: dict[str, int]  # hashes per bank, both parts
    index_bytes: int


class Matcher:
    """Every bank's indexes, and the lookup over them."""

    def __init__(self, settings: Iterable[BankSettings] = ()) -> None:
        self._settings = {bank.name: bank for bank in settings}
        self._parts: dict[tuple[str, BankPart], LoadedBank] = {}
        self._lookups = 0
        self._matches: Counter[str] = Counter()
        # (bank, id) of the entries the bank topic says were released from flood quarantine.
        self.released: frozenset[tuple[str, str]] = frozenset()

    @property
    def banks(self) -> tuple[BankSettings, ...]:
        return tuple(self._settings.values())

    def settings_for(self, name: str) -> BankSettings:
        """A bank's settings; a name only the bank topic knows gets the defaults."""
        known = self._settings.get(name)
        if known is None:
            known = self._settings[name] = BankSettings(name=name)
        return known

    @property
    def rotations(self) -> bool:
        """Whether some bank tries rotations and mirrors (the decode must hash them)."""
        return any(bank.rotations for bank in self._settings.values())

    def install(self, name: str, part: BankPart, bank: LoadedBank) -> None:
        self.settings_for(name)
        self._parts[(name, part)] = bank

    def size(self, name: str) -> int:
        return sum(len(bank.entries) for (bank_name, _), bank in self._parts.items()
                   if bank_name == name)  # fmt: skip

    def lookup(self, pdq: PdqHash) -> Match | None:
        self._lookups += 1
        best: Match | None = None
        for (name, _), bank in self._parts.items():
            settings = self._settings[name]
            if pdq.quality < settings.min_quality or not len(bank.entries):
                continue
            queries = pdq.all_bits() if settings.rotations else (pdq.bits,)
            for position, bits in enumerate(queries):
                query = np.frombuffer(bits, dtype=np.uint8)
                found = bank.index.nearest(query, settings.distance)
                if found is None:
                    continue
                row, distance = found
                variant = None if position == 0 else VARIANTS[position - 1]
                match = Match(
                    bank=name, id=bank.entries.ids[row], distance=distance, quality=pdq.quality,
                    action=settings.action, variant=variant,
                )  # fmt: skip
                if best is None or _rank(match) < _rank(best):
                    best = match
        if best is not None:
            self._matches[best.bank] += 1
        return best

    def within(
        self, bits: bytes, *, banks: frozenset[str] | None = None, quality: int | None = None
    ) -> dict[str, list[tuple[str, int]]]:
        """Every entry within its bank's distance of ``bits``, by bank, nearest first: ``(id,
        distance)`` (HMA's lookup). ``quality``: the hash's, gated by each bank's
        ``min_quality`` (None: a bare hash, not gated). ``banks``: only these."""
        query = np.frombuffer(bits, dtype=np.uint8)
        found: dict[str, list[tuple[str, int]]] = {}
        for (name, _), bank in self._parts.items():
            settings = self._settings[name]
            if (banks is not None and name not in banks) or not len(bank.entries):
                continue
            if quality is not None and quality < settings.min_quality:
                continue
            rows, distances = bank.index.search(query, settings.distance)
            ids = bank.entries.ids
            hits = found.setdefault(name, [])
            hits.extend((ids[int(r)], int(d)) for r, d in zip(rows, distances, strict=True))
        return {name: sorted(hits, key=lambda hit: hit[1]) for name, hits in found.items() if hits}

    def statistics(self) -> MatcherStatistics:
        sizes = {name: self.size(name) for name in self._settings}
        return MatcherStatistics(
            lookups=self._lookups,
            matches=dict(self._matches),
            sizes=sizes,
            index_bytes=sum(bank.index.nbytes for bank in self._parts.values()),
        )


def _rank(match: Match) -> tuple[int, int]:
    return (0 if match.action is BankAction.MATCH else 1, match.distance)
