"""Retrying: capped exponential backoff with jitter, and the one retry loop.

:class:`Backoff` is a pure decision (no clock, no sleep): the delay before the next attempt.
:func:`retry` is the loop every retrying caller shares — the stream starting its clients and
publishing, a connector's producer, the guarded fetcher on a retriable fetch error. It retries
only what its ``retriable`` predicate accepts (for modstream's own errors, the class's
``retriable`` attribute: :func:`is_retriable`), within a bounded number of attempts, a deadline,
or until ``stop`` is set, and tells ``on_retry`` about each failure it retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from modstream.errors import ModstreamError

__all__ = ["Backoff", "BackoffPolicy", "Stopped", "is_retriable", "retry"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class BackoffPolicy:
    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2  # each delay is drawn from [d * (1 - jitter), d]


class Backoff:
    """``next_delay()`` after each failure, ``reset()`` after a success."""

    def __init__(
        self, policy: BackoffPolicy | None = None, *, uniform: Callable[[], float] = random.random
    ) -> None:
        self.policy = policy or BackoffPolicy()
        self._uniform = uniform
        self._delay = self.policy.initial_s
        self.failures = 0

    def next_delay(self) -> float:
        policy = self.policy
        delay = self._delay
        self._delay = min(self._delay * policy.multiplier, policy.max_s)
        self.failures += 1
        return delay * (1.0 - policy.jitter * self._uniform())

    def reset(self) -> None:
        self._delay = self.policy.initial_s
        self.failures = 0


class Stopped(Exception):
    """:func:`retry` gave up because ``stop`` was set while it waited to try again."""


def is_retriable(error: BaseException) -> bool:
    """Whether a modstream error says that trying again may succeed (its class's ``retriable``)."""
    return isinstance(error, ModstreamError) and error.retriable


async def retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    retriable: Callable[[BaseException], bool],
    backoff: Backoff,
    max_attempts: int | None = None,
    deadline: float | None = None,
    stop: asyncio.Event | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``await attempt()`` until it succeeds; re-raise the last failure once it is not
    retriable, ``max_attempts`` were made, or the next try would start after ``deadline``
    (a ``clock()`` value). Raises :class:`Stopped` if ``stop`` is set while waiting."""
    while True:
        try:
            return await attempt()
        except Exception as exc:  # re-raised below unless the predicate accepts it
            if not retriable(exc):
                raise
            delay = backoff.next_delay()
            if max_attempts is not None and backoff.failures >= max_attempts:
                raise
            if deadline is not None and clock() + delay >= deadline:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
        if stop is None:
            await asyncio.sleep(delay)
            continue
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
        if stop.is_set():
            raise Stopped("stopped while waiting to retry")
