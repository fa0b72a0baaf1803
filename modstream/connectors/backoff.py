"""Reconnect delays: capped exponential backoff with jitter. A pure decision, no clock, no sleep."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffPolicy"]


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
