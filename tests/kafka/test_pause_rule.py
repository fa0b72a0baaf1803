"""The stream's pause rule, a pure decision."""

from __future__ import annotations

from modstream.kafka.consume import should_pause


def test_pause_has_hysteresis() -> None:
    """Consumption pauses at the bound and resumes only below three quarters of it."""
    assert not should_pause(63, 64, paused=False)
    assert should_pause(64, 64, paused=False)
    assert should_pause(49, 64, paused=True)
    assert not should_pause(48, 64, paused=True)


def test_a_bound_of_one_still_makes_progress() -> None:
    """With room for one record, the stream resumes as soon as that record is done."""
    assert should_pause(1, 1, paused=False)
    assert should_pause(1, 1, paused=True)
    assert not should_pause(0, 1, paused=True)
