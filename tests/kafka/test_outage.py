"""The outage as a state: declared once, summarised at a bounded rate, over with one answer."""

from __future__ import annotations

from modstream.kafka.outage import Back, Gone, OutageTracker, StillGone


def test_an_outage_is_declared_once_after_two_unanswered_probes_since_the_last_answer() -> None:
    """One unanswered probe is a blip; the second declares the outage, dated from the last
    answer; later probes say nothing until a summary is due."""
    tracker = OutageTracker(started_at=0.0, failures_to_declare=2, summary_every_s=10.0)
    assert tracker.observe(True, 1.0) is None
    assert tracker.observe(False, 2.0, "refused") is None
    assert not tracker.unreachable
    assert tracker.observe(False, 3.0, "refused") == Gone(since=1.0, reason="refused")
    assert tracker.unreachable
    assert [tracker.observe(False, 3.0 + n) for n in range(1, 10)] == [None] * 9


def test_summaries_come_every_interval_with_the_retries_and_the_answer_ends_the_outage() -> None:
    """While it lasts: one StillGone per summary_every_s, counting the clients' retries; the
    first answer: Back with the outage's length; the retries start again from zero."""
    tracker = OutageTracker(started_at=0.0, failures_to_declare=1, summary_every_s=10.0)
    tracker.observe(True, 0.0)
    assert isinstance(tracker.observe(False, 1.0), Gone)
    tracker.retried("publish")
    tracker.retried("publish")
    tracker.retried("commit")
    seen = [tracker.observe(False, float(at)) for at in range(2, 23)]
    summaries = [event for event in seen if event is not None]
    retries = {"publish": 2, "commit": 1}
    assert summaries == [StillGone(for_s=11.0, retries=retries),
                         StillGone(for_s=21.0, retries=retries)]  # fmt: skip
    assert tracker.observe(True, 30.5) == Back(after_s=30.5, retries=retries, first=False)
    assert not tracker.unreachable
    assert tracker.observe(False, 31.0) == Gone(since=30.5, reason="")
    assert tracker.observe(True, 32.0) == Back(after_s=1.5, retries={}, first=False)


def test_a_cluster_that_never_answered_is_gone_since_the_start_and_then_answers() -> None:
    """A process started before its broker: gone since it started; the first answer is the
    start (first=True), not a recovery."""
    tracker = OutageTracker(started_at=5.0, failures_to_declare=2)
    tracker.observe(False, 6.0)
    assert tracker.observe(False, 7.0, "refused") == Gone(since=5.0, reason="refused")
    assert tracker.observe(True, 9.0) == Back(after_s=4.0, retries={}, first=True)
