"""The bank topic's records: a hash bank every scorer shares, as one compacted topic holds it.

A record per bank entry, keyed ``BANK:PDQHEX`` (so compaction keeps one record per hash and
bank), its value a JSON object ``{"bank", "pdq", "id", "added_at", "source"}``; a removal is a
tombstone (no value) under the same key. :class:`BankTopicState` applies records in order and
says which banks changed. Pure: no broker, no clock but the ``added_at`` a new record carries.
The topic itself is read and followed by :mod:`modstream.pipeline.stream.banks`.

A malformed record (another producer's, a hand-made one) is logged and skipped: it cannot stop
the stream, and the rest of the topic still applies.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from modstream.errors import InvalidBank
from modstream.models.pdq import parse_hex
from modstream.pipeline.match.banks import BankEntries, BankSettings

__all__ = [
    "BankRecord",
    "BankTopicState",
    "bank_key",
    "bank_record",
    "parse_bank_record",
    "removal_record",
]

log = logging.getLogger("modstream.banks")
Change = tuple[bytes, bytes | None]  # a record of the topic: (key, value; None: removed)


@dataclass(frozen=True, kw_only=True, slots=True)
class BankRecord:
    """One entry of the bank topic; ``id`` None: a removal (a tombstone)."""

    bank: str
    bits: bytes
    id: str | None
    released: bool = False  # released from flood quarantine (modstream bank release)


def bank_key(bank: str, bits: bytes) -> bytes:
    return f"{bank}:{bits.hex()}".encode()


def bank_record(
    bank: str, bits: bytes, entry_id: str, source: str, *, released: bool = False
) -> tuple[bytes, bytes]:
    """(key, value) adding ``bits`` to ``bank`` with ``entry_id``; ``source`` says who added it;
    ``released``: the entry is released from flood quarantine for good (``released_at``)."""
    BankSettings(name=bank)  # the name is checked as a bank file's would be
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    value = {"bank": bank, "pdq": bits.hex(), "id": entry_id, "source": source, "added_at": now}
    if released:
        value["released_at"] = now
    return bank_key(bank, bits), orjson.dumps(value)


def parse_bank_record(key: bytes, value: bytes | None) -> BankRecord:
    """A record of the bank topic; :class:`InvalidBank` says what is wrong with it."""
    text = key.decode("utf-8", "replace")
    name, sep, hex_hash = text.rpartition(":")
    if not sep:
        raise InvalidBank(f"bank record key {text[:100]!r} is not BANK:PDQHEX")
    try:
        bits = parse_hex(hex_hash)
        BankSettings(name=name)
    except ValueError as exc:
        raise InvalidBank(f"bank record key {text[:100]!r}: {exc}") from None
    if value is None:
        return BankRecord(bank=name, bits=bits, id=None)
    try:
        fields = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidBank(f"bank record {text[:100]!r}: the value is not JSON") from None
    entry_id = fields.get("id") if isinstance(fields, dict) else None
    if not isinstance(entry_id, str) or not entry_id:
        raise InvalidBank(f"bank record {text[:100]!r}: no 'id' string in the value")
    released = isinstance(fields.get("released_at"), str)
    return BankRecord(bank=name, bits=bits, id=entry_id, released=released)


class BankTopicState:
    """Every bank's entries as the topic has them so far. Pure: no Kafka, no clock."""

    def __init__(self) -> None:
        self._banks: dict[str, dict[bytes, str]] = {}
        self._released: dict[tuple[str, bytes], str] = {}  # (bank, hash) -> id, released
        self.malformed = 0

    def apply(self, records: Iterable[Change]) -> set[str]:
        """Apply ``records`` in order; the names of the banks they changed."""
        changed: set[str] = set()
        for key, value in records:
            try:
                record = parse_bank_record(key, value)
            except InvalidBank as exc:
                self.malformed += 1
                log.error("ERROR: skipped a record of the bank topic: %s", exc)
                continue
            entries = self._banks.setdefault(record.bank, {})
            where = (record.bank, record.bits)
            released = record.id if record.released else None
            if self._released.get(where) != released:  # released, or added again un-released
                if released is None:
                    del self._released[where]
                else:
                    self._released[where] = released
                changed.add(record.bank)  # the bank is reinstalled with the news
            if record.id is None:
                if entries.pop(record.bits, None) is not None:
                    changed.add(record.bank)
            elif entries.get(record.bits) != record.id:
                entries[record.bits] = record.id
                changed.add(record.bank)
        return changed

    def released(self) -> frozenset[tuple[str, str]]:
        """(bank, id) of the entries released from flood quarantine."""
        return frozenset((bank, entry_id) for (bank, _bits), entry_id in self._released.items())

    def entries(self, bank: str) -> BankEntries:
        return BankEntries.of(self._banks.get(bank, {}))

    def names(self) -> list[str]:
        """The banks that have entries, sorted."""
        return sorted(name for name, entries in self._banks.items() if entries)

    def items(self, bank: str) -> list[tuple[bytes, str]]:
        """(hash, id) of a bank's entries, in the order they were added."""
        return list(self._banks.get(bank, {}).items())


def removal_record(bank: str, bits: bytes) -> tuple[bytes, None]:
    """(key, tombstone) removing ``bits`` from ``bank``."""
    BankSettings(name=bank)
    return bank_key(bank, bits), None
