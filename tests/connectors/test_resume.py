"""Where a source starts: its checkpoint belongs to the cluster (topic offsets) it was made on."""

from __future__ import annotations

from pathlib import Path

import pytest

from modstream.connectors.checkpoints import Checkpoint, DirectoryCheckpoints
from modstream.connectors.registry import SourceSpec, make_source
from modstream.connectors.resume import Restarting, Resume, StartOver, decide_start, restarts
from modstream.errors import ConfigError

SAVED = Checkpoint(position="skin3.jpg", topic="images.incoming", ends=((0, 9), (1, 8)))


def test_a_checkpoint_resumes_on_the_cluster_that_still_has_its_events() -> None:
    """Ends at or past the saved ones: resume after the saved position."""
    assert decide_start(SAVED, "images.incoming", {0: 9, 1: 20}, restart=False) == Resume(
        "skin3.jpg"
    )


def test_a_topic_that_ends_earlier_is_another_cluster_and_the_source_starts_over() -> None:
    """A new embedded broker (empty topic) or a missing partition: start over, saying why."""
    fresh = decide_start(SAVED, "images.incoming", {0: 0, 1: 0}, restart=False)
    assert isinstance(fresh, StartOver) and fresh.reason is not None
    assert "partition 0 of images.incoming ended at offset 9" in fresh.reason
    assert "on this cluster it ends at offset 0" in fresh.reason
    missing = decide_start(SAVED, "images.incoming", {}, restart=False)
    assert isinstance(missing, StartOver) and "does not exist" in str(missing.reason)
    moved = decide_start(SAVED, "other.incoming", {0: 9, 1: 8}, restart=False)
    assert isinstance(moved, StartOver) and "made for topic images.incoming" in str(moved.reason)


def test_restart_ignores_any_checkpoint_and_nothing_saved_is_a_quiet_start() -> None:
    """restart=true starts over with a reason; no checkpoint starts over without one."""
    assert decide_start(SAVED, "images.incoming", {0: 9, 1: 8}, restart=True) == StartOver(
        "restart=true: the checkpoint at skin3.jpg is ignored"
    )
    assert decide_start(None, "images.incoming", {}, restart=False) == StartOver(None)


def test_a_checkpoint_without_offsets_is_trusted_with_a_note() -> None:
    """A checkpoint an earlier modstream saved (no offsets) resumes, as it did then."""
    old = Checkpoint(position="42")
    decision = decide_start(old, "images.incoming", {0: 0}, restart=False)
    assert decision == Resume("42", note="the checkpoint records no Kafka offsets")


def test_checkpoints_keep_the_offsets_they_were_saved_with(tmp_path: Path) -> None:
    """A saved position and its topic's end offsets load back as they were saved."""
    store = DirectoryCheckpoints(tmp_path)
    store.save("backfill-imgs", "skin3.jpg", topic="images.incoming", ends={1: 8, 0: 9})
    assert store.read("backfill-imgs") == SAVED
    assert store.load("backfill-imgs") == "skin3.jpg"
    store.save("backfill-imgs", "skin4.jpg")
    assert store.read("backfill-imgs") == Checkpoint(position="skin4.jpg")


def test_restart_is_an_option_of_every_source(tmp_path: Path) -> None:
    """``restart=true`` wraps any source so it starts over; a bad value is a usage error."""
    backfill = make_source(SourceSpec("backfill", str(tmp_path)), {"restart": "true"})
    synthetic = make_source(
        SourceSpec("synthetic"), {"restart": "yes", "urls": "http://example.com/a.jpg"}
    )
    plain = make_source(
        SourceSpec("synthetic"), {"restart": "false", "urls": "http://example.com/a.jpg"}
    )
    assert isinstance(backfill, Restarting) and restarts(backfill) and restarts(synthetic)
    assert backfill.name == "backfill" and backfill.checkpoint_key.startswith("backfill-")
    assert not restarts(plain)
    with pytest.raises(ConfigError, match="restart='maybe'"):
        make_source(SourceSpec("backfill", str(tmp_path)), {"restart": "maybe"})
    with pytest.raises(ConfigError, match=r"valid: rate, progress, restart$"):
        make_source(SourceSpec("backfill", str(tmp_path)), {"restrat": "true"})
