"""The dispatch rule of DeadlineBatcher, with plain numbers for time."""

from __future__ import annotations

import pytest

from modstream.pipeline.score.batcher import (
    BatchPolicy,
    DeadlineBatcher,
    Dispatch,
    ServiceTimeEstimate,
    WaitForChange,
    WaitUntil,
)


def make(
    max_batch: int = 4, max_delay: float = 0.010, per_item: float = 0.010
) -> DeadlineBatcher[str]:
    service = ServiceTimeEstimate(per_item_s=per_item, overhead_s=0.0, smoothing=0.5)
    return DeadlineBatcher(BatchPolicy(max_batch_size=max_batch, max_delay_s=max_delay), service)


def test_empty_queue_waits_for_arrivals() -> None:
    """With nothing queued the batcher waits for a change, never dispatches."""
    assert isinstance(make().decide(now=0.0, free_slots=2), WaitForChange)


def test_no_free_device_waits_even_when_full() -> None:
    """A full batch is held while every device is busy."""
    batcher = make(max_batch=2)
    for name in "ab":
        batcher.add(name, now=0.0, deadline=1.0)
    assert isinstance(batcher.decide(now=0.0, free_slots=0), WaitForChange)
    assert batcher.decide(now=0.0, free_slots=1) == Dispatch(2, "full")


def test_partial_batch_waits_up_to_max_delay() -> None:
    """One item with a distant deadline waits exactly until the oldest has waited max_delay."""
    batcher = make(max_delay=0.010)
    batcher.add("a", now=1.000, deadline=5.0)
    assert batcher.decide(now=1.001, free_slots=1) == WaitUntil(pytest.approx(1.010))
    assert batcher.decide(now=1.010, free_slots=1) == Dispatch(1, "max_delay")


def test_dispatches_early_to_meet_the_earliest_deadline() -> None:
    """A batch leaves before max_delay when waiting would make the earliest deadline miss."""
    batcher = make(max_delay=4.0, per_item=0.25)
    batcher.add("a", now=0.0, deadline=1.0)
    batcher.add("b", now=0.0, deadline=8.0)
    # A batch of three (two queued plus one more) is expected to take 0.75: start by 0.25.
    assert batcher.decide(now=0.0, free_slots=1) == WaitUntil(0.25)
    assert batcher.decide(now=0.25, free_slots=1) == Dispatch(2, "deadline")


def test_take_returns_earliest_deadlines_first() -> None:
    """Items leave in deadline order, not arrival order."""
    batcher = make(max_batch=2)
    batcher.add("late", now=0.0, deadline=9.0)
    batcher.add("soon", now=0.1, deadline=1.0)
    batcher.add("middle", now=0.2, deadline=5.0)
    assert batcher.take(2) == ["soon", "middle"]
    assert len(batcher) == 1


def test_flush_sends_partial_batch_immediately() -> None:
    """During shutdown a partial batch goes at once."""
    batcher = make()
    batcher.add("a", now=0.0, deadline=10.0)
    assert batcher.decide(now=0.0, free_slots=1, flush=True) == Dispatch(1, "flush")


def test_discard_drops_cancelled_items() -> None:
    """Items whose callers gave up are removed and the heap order is kept."""
    batcher = make()
    for index, name in enumerate(["a", "x", "b", "y"]):
        batcher.add(name, now=0.0, deadline=float(index))
    assert batcher.discard(lambda name: name in {"x", "y"}) == 2
    assert batcher.take(4) == ["a", "b"]


def test_service_estimate_tracks_observations() -> None:
    """The per-item estimate moves toward observed batch times."""
    service = ServiceTimeEstimate(per_item_s=0.010, overhead_s=0.0, smoothing=0.5)
    service.observe(4, 0.080)  # 20 ms per item observed
    assert service.per_item_s == pytest.approx(0.015)
    assert service.estimate(2) == pytest.approx(0.030)


def test_policy_rejects_nonsense() -> None:
    """A zero batch size is a configuration error."""
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchPolicy(max_batch_size=0)


def test_at_light_load_a_batch_leaves_at_once_when_no_company_is_expected() -> None:
    """Arrivals 80 ms apart: a lone item does not wait 10 ms for a neighbour that will not come."""
    batcher = make(max_delay=0.010)
    batcher.add("first", now=0.0, deadline=1.0)
    assert isinstance(batcher.decide(now=0.0, free_slots=1), WaitUntil)  # no gap known yet
    batcher.take(1)
    for arrival in (0.080, 0.160):
        batcher.add(str(arrival), now=arrival, deadline=arrival + 1.0)
        assert batcher.decide(now=arrival, free_slots=1) == Dispatch(1, "no company expected")
        batcher.take(1)
    assert batcher.statistics().arrival_gap_s == pytest.approx(0.080)


def test_under_load_a_batch_still_waits_for_company() -> None:
    """Arrivals 2 ms apart: the next one is due before max_delay, so the batch waits to fill."""
    batcher = make(max_batch=4, max_delay=0.010)
    for arrival in (0.0, 0.002, 0.004):
        batcher.add(str(arrival), now=arrival, deadline=arrival + 1.0)
    assert batcher.decide(now=0.004, free_slots=1) == WaitUntil(pytest.approx(0.010))
    batcher.add("d", now=0.006, deadline=1.0)
    assert batcher.decide(now=0.006, free_slots=1) == Dispatch(4, "full")
