"""``modstream bank``: edit the shared hash banks of a cluster's bank topic.

    modstream bank add NAME PDQHEX ID       add one hash (ID: what a match reports)
    modstream bank remove NAME PDQHEX       remove it (a tombstone: compaction forgets it)
    modstream bank import NAME FILE         add every line of a bank file (FILE - : stdin)
    modstream bank export [NAME]            print the banks as bank-file lines (NAME PDQHEX ID)
    modstream bank release NAME PDQHEX      release an entry from flood quarantine, for good

Every scorer started with ``--bank-topic`` applies a change within about a second. Exit status:
0 done, 1 the cluster could not be reached, 2 on a usage error (a malformed hash or bank file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.cli.runner import run_command
from modstream.pipeline.stream.topics import Topics

if TYPE_CHECKING:
    from modstream.kafka.settings import KafkaSettings
    from modstream.pipeline.match.records import BankTopicState


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bank",
        help="add, remove, import or export the shared hash banks of a bank topic",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a PDQ hash to a bank")
    add.add_argument("name")
    add.add_argument("pdq", metavar="PDQHEX")
    add.add_argument("id")
    remove = actions.add_parser("remove", help="remove a PDQ hash from a bank")
    remove.add_argument("name")
    remove.add_argument("pdq", metavar="PDQHEX")
    load = actions.add_parser("import", help="add every hash of a bank file")
    load.add_argument("name")
    load.add_argument("file", metavar="FILE")
    export = actions.add_parser("export", help="print the banks' entries")
    export.add_argument("name", nargs="?", default=None)
    release = actions.add_parser(
        "release", help="release an entry from flood quarantine (it is not quarantined again)"
    )
    release.add_argument("name")
    release.add_argument("pdq", metavar="PDQHEX")
    for action in (add, remove, load, export, release):
        action.add_argument(
            "--bank-topic", default=Topics().banks, metavar="TOPIC",
            help="the compacted topic the scorers follow (default images.banks)",
        )  # fmt: skip
        add_kafka_options(
            action, required=True, without="required: the banks live on a cluster's topic"
        )
        action.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    def setup() -> tuple[KafkaSettings, list[tuple[bytes, bytes | None]]]:
        kafka = kafka_settings(args)
        assert kafka is not None  # --bootstrap-servers is required
        return kafka, _records(args)

    async def main(settings: tuple[KafkaSettings, list[tuple[bytes, bytes | None]]]) -> None:
        kafka, records = settings
        if args.action == "export":
            await _export(kafka, args.bank_topic, args.name)
            return
        if args.action == "release":
            bits = _hash_argument(args.pdq)
            records = [await _release(kafka, args.bank_topic, args.name, bits)]
        sent = await _send(kafka, args.bank_topic, records)
        print(f"modstream bank: {sent} change{'' if sent == 1 else 's'} sent to "
              f"{args.bank_topic}", file=sys.stderr)  # fmt: skip

    return run_command("bank", setup, main)


def _hash_argument(text: str) -> bytes:
    """A PDQHEX argument; a malformed one is a usage error naming it."""
    from modstream.errors import InvalidBank
    from modstream.models.pdq import parse_hex

    try:
        return parse_hex(text)
    except ValueError as exc:
        raise InvalidBank(f"{text[:80]!r}: {exc}") from None


def _records(args: argparse.Namespace) -> list[tuple[bytes, bytes | None]]:
    from modstream.pipeline.match.banks import parse_bank, read_bank
    from modstream.pipeline.match.records import bank_record, removal_record

    if args.action in ("add", "remove", "release"):
        bits = _hash_argument(args.pdq)  # checked before the cluster is asked anything
        if args.action == "release":  # the entry's id is read from the topic, in main
            return []
        if args.action == "remove":
            return [removal_record(args.name, bits)]
        return [bank_record(args.name, bits, args.id, source="modstream bank add")]
    if args.action == "import":
        source = "modstream bank import"
        if args.file == "-":
            entries = parse_bank(sys.stdin.read(), "standard input")
        else:
            entries = read_bank(Path(args.file))
        return [
            bank_record(args.name, bytes(row), entry_id, source)
            for row, entry_id in zip(entries.hashes, entries.ids, strict=True)
        ]
    return []


async def _send(kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes | None]]) -> int:
    from modstream.backoff import BackoffPolicy
    from modstream.kafka.access import check_access
    from modstream.kafka.publish import Publisher
    from modstream.pipeline.stream.banks import ensure_bank_topic

    await check_access(kafka)
    await ensure_bank_topic(kafka, topic)
    retry = BackoffPolicy(initial_s=0.25, max_s=2.0)
    async with Publisher(kafka, role="bank", linger_ms=5, retry=retry) as publisher:
        # A command, not a service: a broker away for more than a few tries is its error.
        return await publisher.send_all(topic, records, max_attempts=5)


async def _state(kafka: KafkaSettings, topic: str) -> BankTopicState:
    """The bank topic read to its end."""
    from modstream.kafka.access import check_access
    from modstream.kafka.changes import changes
    from modstream.pipeline.match.records import BankTopicState

    await check_access(kafka)
    state = BankTopicState()
    async with changes(kafka, topic, role="bank") as reader:
        state.apply(await reader.to_end())
    return state


async def _release(kafka: KafkaSettings, topic: str, bank: str, bits: bytes) -> tuple[bytes, bytes]:
    """The entry's record again, marked released (what every scorer following the topic
    reads); an entry the topic does not hold is refused, naming it."""
    from modstream.errors import InvalidBank
    from modstream.pipeline.match.records import bank_record

    entries = dict((await _state(kafka, topic)).items(bank))
    if bits not in entries:
        raise InvalidBank(f"bank {bank} on {topic} has no entry {bits.hex()}")
    return bank_record(bank, bits, entries[bits], "modstream bank release", released=True)


async def _export(kafka: KafkaSettings, topic: str, name: str | None) -> None:
    state = await _state(kafka, topic)
    for bank in [name] if name is not None else state.names():
        for bits, entry_id in state.items(bank):
            print(f"{bank} {bits.hex()} {entry_id}")
