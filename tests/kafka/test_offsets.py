"""OffsetTracker: out-of-order completion, in-order commits."""

from __future__ import annotations

from modstream.kafka.offsets import OffsetTracker


def test_commit_waits_for_every_earlier_offset() -> None:
    """A later offset finishing first does not move the commit position past an earlier one."""
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.start("p0", offset)
    tracker.finish("p0", 12)
    tracker.finish("p0", 11)
    assert tracker.committable() == {}
    tracker.finish("p0", 10)
    assert tracker.committable() == {"p0": 13}


def test_position_is_committed_once() -> None:
    """After mark_committed, the same position is not offered again."""
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.start("p0", 0)
    tracker.finish("p0", 0)
    assert tracker.committable() == {"p0": 1}
    tracker.mark_committed({"p0": 1})
    assert tracker.committable() == {}


def test_gaps_in_offsets_do_not_block_commits() -> None:
    """Offsets missing from the log (compaction, markers) are skipped, not waited for."""
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in (5, 7, 9):
        tracker.start("p0", offset)
    tracker.finish("p0", 5)
    tracker.finish("p0", 7)
    assert tracker.committable() == {"p0": 8}
    tracker.finish("p0", 9)
    assert tracker.committable() == {"p0": 10}


def test_partitions_are_independent() -> None:
    """A slow record on one partition does not hold back another partition."""
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.start("a", 0)
    tracker.start("b", 0)
    tracker.finish("b", 0)
    assert tracker.committable() == {"b": 1}
    assert tracker.in_flight == 1


def test_forgotten_partitions_ignore_late_finishes() -> None:
    """After a revoke, a record finishing late changes nothing."""
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.start("a", 3)
    tracker.forget(["a"])
    tracker.finish("a", 3)
    assert tracker.committable() == {}
    assert tracker.statistics().partitions == 0


def test_rewind_starts_the_partition_over() -> None:
    """A consumer that seeks back (replay) restarts tracking at the new offset."""
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.start("a", 10)
    tracker.start("a", 4)
    tracker.finish("a", 4)
    assert tracker.committable() == {"a": 5}
