"""The Kafka client's log lines: its retries at WARNING, and rate-limited (the first of each
kind, then a count of repeats).

While a broker is away, aiokafka logs every failed attempt (connect, metadata, produce,
coordinator) at its retry interval of 100 ms: about a hundred ERROR and WARNING lines a second,
the same few messages over and over. modstream says what happens in lines of its own
(:mod:`modstream.kafka.outage`), so the client's repeats add nothing but noise.

:class:`RepeatLimiter` is the pure decision (no clock, no logging): per kind of line, let the
first through, count the repeats, and let one through again, with the count, at most every
``interval_s``; a kind quiet for ``quiet_s`` starts afresh. :class:`RepeatFilter` applies it to
the records of some loggers (a kind: the logger, the level and the message's template with its
numbers blanked), and says ``(N similar lines suppressed)`` on the line it lets through.

aiokafka also logs at ERROR conditions it retries by itself: a group coordinator not available
yet (every first consumer group on a fresh cluster, while Kafka creates its offsets topic), a
node it cannot connect to, a fetch or a commit that fails and is sent again. None needs anyone
to act, so :class:`ClientRetryLevel` logs exactly those messages (by their template) at WARNING;
every other ERROR of the client stays one.

:func:`limit_repeats` installs both on a handler, which sees the records of every logger below
the root.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = [
    "KAFKA_CLIENT_LOGGERS",
    "ClientRetryLevel",
    "RepeatFilter",
    "RepeatLimiter",
    "limit_repeats",
]

KAFKA_CLIENT_LOGGERS = ("aiokafka",)
# aiokafka's ERROR messages (0.14) for what it retries by itself, by template.
RETRIED_AT_ERROR = frozenset(
    {
        "Unable connect to node with id %s: %s",
        'Unable connect to "%s:%s": %s',
        "Unable to update metadata from %s",
        "Group Coordinator Request failed: %s",
        "Error sending %s to node %s [%s] -- marking coordinator dead",
        "Heartbeat session expired - marking coordinator dead",
        "Heartbeat send request failed: %s. Will retry.",
        "OffsetCommit failed for group %s due to group error (%s), will rejoin",
        "Failed fetch messages from %s: %s",
        "Failed fetch offsets from %s: %s",
    }
)
_NUMBERS = re.compile(r"\d+")


@dataclass(slots=True)
class _Kind:
    passed_at: float  # when a line of this kind was last let through
    seen_at: float
    suppressed: int = 0


class RepeatLimiter:
    """``admit(kind, now)``: ``None`` to drop a line, else how many of its kind were dropped
    since the last one let through (0 for the first)."""

    def __init__(
        self, *, interval_s: float = 10.0, quiet_s: float = 60.0, max_kinds: int = 1024
    ) -> None:
        self.interval_s = interval_s
        self.quiet_s = quiet_s
        self._max_kinds = max_kinds
        self._kinds: dict[Hashable, _Kind] = {}

    def admit(self, kind: Hashable, now: float) -> int | None:
        seen = self._kinds.get(kind)
        if seen is None or now - seen.seen_at >= self.quiet_s:
            if seen is None and len(self._kinds) >= self._max_kinds:
                del self._kinds[next(iter(self._kinds))]  # the kind seen longest ago
            self._kinds.pop(kind, None)
            self._kinds[kind] = _Kind(passed_at=now, seen_at=now)
            return 0
        seen.seen_at = now
        self._kinds[kind] = self._kinds.pop(kind)  # most recently seen last
        if now - seen.passed_at < self.interval_s:
            seen.suppressed += 1
            return None
        suppressed, seen.suppressed, seen.passed_at = seen.suppressed, 0, now
        return suppressed

    def suppressed(self) -> int:
        """Lines dropped and not yet reported on a line let through."""
        return sum(kind.suppressed for kind in self._kinds.values())


class RepeatFilter(logging.Filter):
    """Rate-limits the records of ``loggers`` (and their children); others pass untouched."""

    def __init__(
        self,
        loggers: tuple[str, ...] = KAFKA_CLIENT_LOGGERS,
        limiter: RepeatLimiter | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._loggers = loggers
        self.limiter = limiter or RepeatLimiter()
        self._clock = clock
        self._lock = threading.Lock()  # a handler's filters run outside its lock

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._loggers):
            return True
        kind = (record.name, record.levelno, _NUMBERS.sub("#", str(record.msg)))
        with self._lock:
            suppressed = self.limiter.admit(kind, self._clock())
        if suppressed is None:
            return False
        if suppressed:
            # Formatted later, with the record's own arguments: the note holds no %.
            record.msg = f"{record.msg} ({suppressed} similar lines suppressed)"
        return True


class ClientRetryLevel(logging.Filter):
    """Lowers the Kafka client's ERROR records about what it retries to WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and record.exc_info is None
            and record.name.startswith(KAFKA_CLIENT_LOGGERS)
            and record.msg in RETRIED_AT_ERROR
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def limit_repeats(handler: logging.Handler) -> RepeatFilter:
    """Log the Kafka client's retries at WARNING and rate-limit its lines on ``handler``."""
    handler.addFilter(ClientRetryLevel())
    repeat_filter = RepeatFilter()
    handler.addFilter(repeat_filter)
    return repeat_filter
