"""The lookup over every bank: distance and quality at their boundaries, rotations, priority."""

from __future__ import annotations

import numpy as np

from modstream.models.pdq import PdqHash
from modstream.pipeline.match.banks import BankAction, BankEntries, BankSettings
from modstream.pipeline.match.matcher import BankPart, LoadedBank, Matcher

RNG = np.random.default_rng(7)


def _random_hash() -> bytes:
    return RNG.integers(0, 256, 32, dtype=np.uint8).tobytes()


def _flipped(bits: bytes, count: int) -> bytes:
    """``bits`` with its first ``count`` bits inverted (distance exactly ``count``)."""
    value = int.from_bytes(bits, "big") ^ (((1 << count) - 1) << (256 - count))
    return value.to_bytes(32, "big")


def _bank(entries: dict[bytes, str]) -> LoadedBank:
    return LoadedBank.build(BankEntries.of(entries))


def test_a_match_holds_up_to_the_banks_distance_and_not_one_bit_beyond() -> None:
    """At the bank's distance the hash matches, with its id and distance; one more bit, not."""
    banked = _random_hash()
    matcher = Matcher([BankSettings(name="known", distance=31)])
    matcher.install("known", BankPart.FILE, _bank({banked: "case-1"}))
    found = matcher.lookup(PdqHash(bits=_flipped(banked, 31), quality=80))
    assert found is not None
    assert (found.bank, found.id, found.distance, found.quality) == ("known", "case-1", 31, 80)
    assert matcher.lookup(PdqHash(bits=_flipped(banked, 32), quality=80)) is None


def test_hashes_below_the_banks_minimum_quality_are_not_looked_up() -> None:
    """Quality 49 against a minimum of 50 never matches, even the exact hash; 50 does."""
    banked = _random_hash()
    matcher = Matcher([BankSettings(name="known")])
    matcher.install("known", BankPart.FILE, _bank({banked: "x"}))
    assert matcher.lookup(PdqHash(bits=banked, quality=49)) is None
    assert matcher.lookup(PdqHash(bits=banked, quality=50)) is not None


def test_rotations_are_tried_only_where_the_bank_asks() -> None:
    """A hash that matches only through a rotated variant matches a bank with rotations (and
    says which variant), not one without."""
    banked, unrelated = _random_hash(), _random_hash()
    image = PdqHash(bits=unrelated, quality=90, variants=(_random_hash(), banked, *(
        _random_hash() for _ in range(5))))  # fmt: skip
    plain = Matcher([BankSettings(name="k")])
    plain.install("k", BankPart.FILE, _bank({banked: "x"}))
    assert plain.lookup(image) is None
    rotating = Matcher([BankSettings(name="k", rotations=True)])
    rotating.install("k", BankPart.FILE, _bank({banked: "x"}))
    found = rotating.lookup(image)
    assert found is not None and found.variant == "rotate180" and found.distance == 0


def test_a_known_content_match_wins_over_a_closer_safe_match() -> None:
    """Known content is never waved through by a negative bank, however close its entry."""
    banked = _random_hash()
    matcher = Matcher([BankSettings(name="art", action=BankAction.SAFE),
                       BankSettings(name="known")])  # fmt: skip
    matcher.install("art", BankPart.FILE, _bank({banked: "painting"}))
    matcher.install("known", BankPart.FILE, _bank({_flipped(banked, 20): "case"}))
    found = matcher.lookup(PdqHash(bits=banked, quality=90))
    assert found is not None and (found.bank, found.action, found.distance) == (
        "known", BankAction.MATCH, 20)  # fmt: skip


def test_both_parts_of_a_bank_are_looked_up_and_counted() -> None:
    """A bank's file and its topic entries both match; statistics count lookups, matches and
    the hashes of both parts; a bank only the topic names gets the default settings."""
    from_file, from_topic = _random_hash(), _random_hash()
    matcher = Matcher([BankSettings(name="known")])
    matcher.install("known", BankPart.FILE, _bank({from_file: "f"}))
    matcher.install("known", BankPart.TOPIC, _bank({from_topic: "t", _random_hash(): "u"}))
    matcher.install("removed", BankPart.TOPIC, _bank({_random_hash(): "r"}))
    assert matcher.lookup(PdqHash(bits=from_topic, quality=60)).id == "t"  # type: ignore[union-attr]
    assert matcher.lookup(PdqHash(bits=from_file, quality=60)).id == "f"  # type: ignore[union-attr]
    assert matcher.lookup(PdqHash(bits=_random_hash(), quality=60)) is None
    statistics = matcher.statistics()
    assert statistics.lookups == 3 and statistics.matches == {"known": 2}
    assert statistics.sizes == {"known": 3, "removed": 1}
    assert matcher.settings_for("removed") == BankSettings(name="removed")


def test_an_empty_bank_matches_nothing() -> None:
    """A bank of no hashes is valid and never matches."""
    matcher = Matcher([BankSettings(name="empty")])
    matcher.install("empty", BankPart.FILE, _bank({}))
    assert matcher.lookup(PdqHash(bits=_random_hash(), quality=100)) is None
