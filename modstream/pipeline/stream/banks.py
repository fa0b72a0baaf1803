"""The bank topic: hash banks every scorer shares, in one compacted Kafka topic.

A record per bank entry, keyed ``BANK:PDQHEX`` (so compaction keeps one record per hash and
bank), its value a JSON object ``{"bank", "pdq", "id", "added_at", "source"}``; a removal is a
tombstone (no value) under the same key. ``modstream bank add|remove|import|export`` and
``modstream review --bank-decisions`` write it; every scorer started with ``--bank-topic`` reads
it to its end before it consumes an image, then follows it, so an entry reaches every scorer
within about a second (the time to rebuild the changed bank's index, off the event loop).

    records -> BankTopicState.apply (pure: which banks changed) -> rebuild those banks' indexes
            -> Matcher.install(bank, BankPart.TOPIC, ...)

A malformed record (another producer's, a hand-made one) is logged and skipped: it cannot stop
the stream, and the rest of the topic still applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from modstream.errors import InvalidBank
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.changes import Change, changes
from modstream.kafka.settings import KafkaSettings
from modstream.models.pdq import parse_hex
from modstream.pipeline.match.banks import BankEntries, BankSettings
from modstream.pipeline.match.matcher import BankPart, LoadedBank, Matcher

__all__ = [
    "DEFAULT_BANK_TOPIC",
    "BankRecord",
    "BankTopicState",
    "bank_record",
    "ensure_bank_topic",
    "following_banks",
    "parse_bank_record",
    "removal_record",
    "send_bank_records",
]

log = logging.getLogger("modstream.banks")
DEFAULT_BANK_TOPIC = "images.banks"


@dataclass(frozen=True, kw_only=True, slots=True)
class BankRecord:
    """One entry of the bank topic; ``id`` None: a removal (a tombstone)."""

    bank: str
    bits: bytes
    id: str | None


def bank_key(bank: str, bits: bytes) -> bytes:
    return f"{bank}:{bits.hex()}".encode()


def bank_record(bank: str, bits: bytes, entry_id: str, source: str) -> tuple[bytes, bytes]:
    """(key, value) adding ``bits`` to ``bank`` with ``entry_id``; ``source`` says who added it."""
    BankSettings(name=bank)  # the name is checked as a bank file's would be
    value = {
        "bank": bank, "pdq": bits.hex(), "id": entry_id, "source": source,
        "added_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
    }  # fmt: skip
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
    return BankRecord(bank=name, bits=bits, id=entry_id)


class BankTopicState:
    """Every bank's entries as the topic has them so far. Pure: no Kafka, no clock."""

    def __init__(self) -> None:
        self._banks: dict[str, dict[bytes, str]] = {}
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
            if record.id is None:
                if entries.pop(record.bits, None) is not None:
                    changed.add(record.bank)
            elif entries.get(record.bits) != record.id:
                entries[record.bits] = record.id
                changed.add(record.bank)
        return changed

    def entries(self, bank: str) -> BankEntries:
        return BankEntries.of(self._banks.get(bank, {}))

    def names(self) -> list[str]:
        """The banks that have entries, sorted."""
        return sorted(name for name, entries in self._banks.items() if entries)

    def items(self, bank: str) -> list[tuple[bytes, str]]:
        """(hash, id) of a bank's entries, in the order they were added."""
        return list(self._banks.get(bank, {}).items())


async def _install(state: BankTopicState, banks: set[str], matcher: Matcher) -> None:
    for bank in sorted(banks):
        loaded = await asyncio.to_thread(LoadedBank.build, state.entries(bank))
        matcher.install(bank, BankPart.TOPIC, loaded)
        log.info("hash bank %s: %s from the bank topic", bank, loaded.entries.describe())


@contextlib.asynccontextmanager
async def following_banks(
    kafka: KafkaSettings, topic: str, matcher: Matcher
) -> AsyncIterator[BankTopicState]:
    """The bank topic read to its end into ``matcher``, then followed while the block runs."""
    state = BankTopicState()
    async with changes(kafka, topic, role="banks") as reader:
        await _install(state, state.apply(await reader.to_end()), matcher)

        async def follow() -> None:
            while True:
                try:
                    batch = await reader.next_batch(timeout_s=1.0)
                except KafkaError as exc:  # the client reconnects by itself; say so and go on
                    log.warning("reading the bank topic %s: %s", topic, exc)
                    await asyncio.sleep(1.0)
                    continue
                changed = state.apply(batch)
                if changed:
                    await _install(state, changed, matcher)

        task = asyncio.create_task(follow(), name="modstream-bank-topic")
        try:
            yield state
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def removal_record(bank: str, bits: bytes) -> tuple[bytes, None]:
    """(key, tombstone) removing ``bits`` from ``bank``."""
    BankSettings(name=bank)
    return bank_key(bank, bits), None


async def ensure_bank_topic(kafka: KafkaSettings, topic: str, replication_factor: int = 1) -> None:
    """Create the bank topic (one partition, compacted) if it does not exist yet."""
    await ensure_topics(
        kafka, [TopicSpec(topic, 1, compacted=True)], replication_factor=replication_factor
    )


async def send_bank_records(
    producer: AIOKafkaProducer, topic: str, records: Iterable[tuple[bytes, bytes | None]]
) -> int:
    """Send ``records`` (acks=all, as the producer is built) and wait for every one of them."""
    futures = [await producer.send(topic, key=key, value=value) for key, value in records]
    await asyncio.gather(*futures)
    return len(futures)
