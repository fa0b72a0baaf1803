"""The Kafka client's repeated log lines: the first of each kind, then a count, at a bounded
rate."""

from __future__ import annotations

import logging

from modstream.kafka.logs import ClientRetryLevel, RepeatFilter, RepeatLimiter


def test_the_first_line_of_a_kind_passes_and_repeats_are_counted_until_the_interval() -> None:
    """Within the interval repeats are dropped; the next one after it passes with their count."""
    limiter = RepeatLimiter(interval_s=10.0, quiet_s=60.0)
    decisions = [limiter.admit("connect failed", at / 10) for at in range(100)]  # 0 .. 9.9 s
    assert decisions == [0] + [None] * 99
    assert limiter.suppressed() == 99
    assert limiter.admit("connect failed", 10.0) == 99
    assert limiter.suppressed() == 0


def test_kinds_are_limited_apart_and_a_quiet_kind_starts_afresh() -> None:
    """Another kind passes at once; a kind unseen for quiet_s passes again as a first line."""
    limiter = RepeatLimiter(interval_s=10.0, quiet_s=30.0)
    assert limiter.admit("a", 0.0) == 0
    assert limiter.admit("b", 0.1) == 0
    assert limiter.admit("a", 0.2) is None
    assert limiter.admit("a", 40.0) == 0  # quiet for 39.8 s: its drop is forgotten with it


def test_the_kinds_remembered_are_bounded() -> None:
    """Past max_kinds, the kind seen longest ago is forgotten (and would pass again)."""
    limiter = RepeatLimiter(max_kinds=2)
    for kind in ("a", "b", "c"):
        assert limiter.admit(kind, 0.0) == 0
    assert limiter.admit("c", 0.1) is None
    assert limiter.admit("a", 0.1) == 0


def _record(name: str, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, None)


def test_the_filter_limits_the_kafka_client_only_and_says_how_many_it_dropped() -> None:
    """aiokafka lines of one template are one kind, and so are formatted texts that differ only
    in numbers; modstream's own lines all pass; the line let through after the interval carries
    '(N similar lines suppressed)'."""
    now = [0.0]
    repeat_filter = RepeatFilter(clock=lambda: now[0])
    template = "Unable connect to node with id %s: %s"
    assert repeat_filter.filter(_record("aiokafka", template, 1, "refused"))
    assert not repeat_filter.filter(_record("aiokafka", template, 1, "refused"))
    assert repeat_filter.filter(_record("aiokafka", "Unable connect to node with id 2: x"))
    assert not repeat_filter.filter(_record("aiokafka", "Unable connect to node with id 3: x"))
    assert all(repeat_filter.filter(_record("modstream.stream", "same")) for _ in range(5))
    now[0] = 10.0
    passed = _record("aiokafka", template, 1, "refused")
    assert repeat_filter.filter(passed)
    assert passed.getMessage() == (
        "Unable connect to node with id 1: refused (1 similar lines suppressed)"
    )
    passed = _record("aiokafka", "Unable connect to node with id 4: x")
    assert repeat_filter.filter(passed), "a formatted text is a kind (numbers aside) of its own"
    assert passed.getMessage() == "Unable connect to node with id 4: x (1 similar lines suppressed)"
    assert repeat_filter.filter(_record("aiokafka.producer.sender", template, 1, "refused"))


def test_the_clients_own_retries_are_warnings_and_its_other_errors_stay_errors() -> None:
    """A coordinator not available yet (a fresh cluster) is retried by aiokafka: WARNING; an
    ERROR it does not retry, and modstream's own ERROR lines, keep their level."""
    level = ClientRetryLevel()
    coordinator = "aiokafka.consumer.group_coordinator"
    retried = _record(coordinator, "Group Coordinator Request failed: %s", "not available")
    fatal = _record(coordinator, "Attempt to join group failed due to fatal error: %s", "x")
    ours = _record("modstream.stream", "Group Coordinator Request failed: %s", "x")
    assert all(level.filter(record) for record in (retried, fatal, ours))
    assert (retried.levelno, retried.levelname) == (logging.WARNING, "WARNING")
    assert fatal.levelno == ours.levelno == logging.ERROR
