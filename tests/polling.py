"""The one poll-until of the tests: wait for readable state that has no event to wait on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def until(
    condition: Callable[[], T],
    what: str,
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.05,
    alive: Callable[[], None] | None = None,
) -> T:
    """Poll ``condition`` until it returns something true, and return that. ``alive`` raises if
    what we wait on died; after ``timeout_s`` an AssertionError names ``what``."""
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval_s)
    return found
