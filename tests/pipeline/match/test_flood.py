"""Flood quarantine's pure guard: distinct images counted over a sliding window, per entry."""

from __future__ import annotations

import pytest

from modstream.pipeline.match.flood import Flood, FloodGuard, FloodSettings

ENTRY = ("known", "template")
OTHER = ("known", "case-1")


def test_more_distinct_images_than_the_limit_quarantine_the_entry_once() -> None:
    guard = FloodGuard(FloodSettings(limit=3, window_s=60))
    seen = [guard.observe(ENTRY, f"sha-{n}", now=float(n)) for n in range(6)]
    assert seen == [Flood.CLEAR] * 3 + [Flood.STARTED, Flood.QUARANTINED, Flood.QUARANTINED]
    assert guard.quarantined == {ENTRY}
    assert guard.observe(OTHER, "sha-0", now=6.0) is Flood.CLEAR  # entries are counted apart


def test_copies_of_one_image_count_once() -> None:
    guard = FloodGuard(FloodSettings(limit=2, window_s=60))
    assert {guard.observe(ENTRY, "same", now=float(n)) for n in range(50)} == {Flood.CLEAR}
    assert guard.observe(ENTRY, "second", now=51.0) is Flood.CLEAR
    assert guard.observe(ENTRY, "third", now=52.0) is Flood.STARTED


def test_the_window_slides_a_trickle_never_floods() -> None:
    """One new image every 30 s against a limit of 3 in 60 s: never more than 3 at once."""
    guard = FloodGuard(FloodSettings(limit=3, window_s=60))
    assert {guard.observe(ENTRY, f"sha-{n}", now=30.0 * n) for n in range(40)} == {Flood.CLEAR}
    # ... but the same images in a burst do flood.
    burst = [guard.observe(ENTRY, f"burst-{n}", now=2000.0 + n) for n in range(4)]
    assert burst[-1] is Flood.STARTED


def test_a_released_entry_is_cleared_and_never_quarantined_again() -> None:
    guard = FloodGuard(FloodSettings(limit=1, window_s=60))
    guard.observe(ENTRY, "a", now=0.0)
    assert guard.observe(ENTRY, "b", now=1.0) is Flood.STARTED
    assert guard.release([ENTRY, OTHER]) == [ENTRY]  # only the quarantined one is reported
    assert guard.quarantined == frozenset()
    assert {guard.observe(ENTRY, f"x{n}", now=2.0 + n) for n in range(20)} == {Flood.CLEAR}


def test_limit_zero_turns_it_off_and_bad_settings_are_refused() -> None:
    guard = FloodGuard(FloodSettings(limit=0, window_s=60))
    assert {guard.observe(ENTRY, f"s{n}", now=0.0) for n in range(500)} == {Flood.CLEAR}
    with pytest.raises(ValueError, match="--flood-limit"):
        FloodSettings(limit=-1)
    with pytest.raises(ValueError, match="--flood-window"):
        FloodSettings(window_s=0)


def test_prune_forgets_entries_idle_past_the_window() -> None:
    guard = FloodGuard(FloodSettings(limit=2, window_s=10))
    guard.observe(ENTRY, "a", now=0.0)
    guard.observe(ENTRY, "b", now=1.0)
    guard.prune(now=100.0)
    # forgotten: two more distinct images are within the limit again
    assert guard.observe(ENTRY, "c", now=100.0) is Flood.CLEAR
    assert guard.observe(ENTRY, "d", now=101.0) is Flood.CLEAR
