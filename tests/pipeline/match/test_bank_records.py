"""The bank topic's records and the state they build: pure, no broker."""

from __future__ import annotations

import orjson
import pytest

from modstream.errors import InvalidBank
from modstream.pipeline.match.records import (
    BankTopicState,
    bank_record,
    parse_bank_record,
    removal_record,
)

A = bytes.fromhex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
B = bytes(range(32))


def test_records_round_trip_and_a_tombstone_is_a_removal() -> None:
    """An added entry reads back with its bank, hash and id; a removal has no id."""
    key, value = bank_record("removed", A, "sha-1", source="review by alice")
    assert key == b"removed:" + A.hex().encode()
    assert orjson.loads(value)["source"] == "review by alice"
    added = parse_bank_record(key, value)
    assert (added.bank, added.bits, added.id) == ("removed", A, "sha-1")
    removed = parse_bank_record(*removal_record("removed", A))
    assert (removed.bank, removed.bits, removed.id) == ("removed", A, None)


def test_the_state_applies_adds_replacements_and_removals_in_order() -> None:
    """Each change names the banks it changed; a repeated record changes nothing; a removal
    of an unknown hash changes nothing; entries keep the order they were added in."""
    state = BankTopicState()
    assert state.apply([bank_record("k", A, "one", "t"), bank_record("k", B, "two", "t")]) == {"k"}
    assert state.apply([bank_record("k", A, "one", "t")]) == set()
    assert state.apply([bank_record("k", A, "uno", "t"), removal_record("j", A)]) == {"k"}
    assert state.items("k") == [(A, "uno"), (B, "two")]
    assert state.apply([removal_record("k", B)]) == {"k"}
    assert state.items("k") == [(A, "uno")] and len(state.entries("k")) == 1
    assert state.names() == ["k"]


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        (b"no-colon", b"{}", "is not BANK:PDQHEX"),
        (b"k:abc", b'{"id": "x"}', "64 hexadecimal characters"),
        (b"bad name:" + A.hex().encode(), b'{"id": "x"}', "use letters, digits"),
        (b"k:" + A.hex().encode(), b"not json", "the value is not JSON"),
        (b"k:" + A.hex().encode(), b'{"id": 5}', "no 'id' string"),
    ],
)
def test_a_malformed_record_is_named_and_skipped(key: bytes, value: bytes, problem: str) -> None:
    """Another producer's malformed record is a typed error; the state skips it, counts it,
    and applies the records around it."""
    with pytest.raises(InvalidBank) as raised:
        parse_bank_record(key, value)
    assert problem in str(raised.value)
    state = BankTopicState()
    changed = state.apply([(key, value), bank_record("k", B, "good", "t")])
    assert changed == {"k"} and state.malformed == 1 and state.items("k") == [(B, "good")]


def test_a_release_marks_the_entry_and_changes_its_bank() -> None:
    """``modstream bank release`` re-sends the entry with ``released_at``: the state lists it
    released (and says its bank changed, so followers reinstall it); the entry added again
    without the mark, or removed, is released no more."""
    state = BankTopicState()
    state.apply([bank_record("k", A, "template", "t"), bank_record("k", B, "other", "t")])
    assert state.released() == frozenset()
    key, value = bank_record("k", A, "template", "modstream bank release", released=True)
    assert "released_at" in orjson.loads(value)
    assert parse_bank_record(key, value).released
    assert state.apply([(key, value)]) == {"k"}
    assert state.released() == {("k", "template")}
    assert state.apply([(key, value)]) == set()  # released twice: nothing new
    assert state.items("k") == [(A, "template"), (B, "other")]
    assert state.apply([bank_record("k", A, "template", "t")]) == {"k"}
    assert state.released() == frozenset()
    state.apply([(key, value), removal_record("k", A)])
    assert state.released() == frozenset()
