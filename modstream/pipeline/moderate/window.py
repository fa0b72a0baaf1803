"""The batch front doors' ordered, bounded window: ``modstream score`` and ``modstream eval``.

Inputs are moderated concurrently, at most ``size`` at once, and their results come back in input
order, so memory stays flat however many inputs there are and the output lines match the inputs.
A batch job has no latency budget: :func:`bulk_deadline` lets batches fill (the batcher's
``max_delay_s`` still bounds each wait).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["BULK_DEADLINE_S", "bulk_deadline", "in_order"]

T = TypeVar("T")
R = TypeVar("R")
BULK_DEADLINE_S = 3600.0


def bulk_deadline() -> float:
    """The deadline a batch job's image gets: far enough that only full batches dispatch."""
    return time.monotonic() + BULK_DEADLINE_S


async def in_order(
    items: Iterable[T], work: Callable[[T], Awaitable[R]], *, size: int
) -> AsyncIterator[R]:
    """``await work(item)`` for every item, ``size`` at a time, yielded in input order.

    Closing the iterator early cancels the work still in the window.
    """
    if size < 1:
        raise ValueError("the window holds at least one item")
    window: deque[asyncio.Task[R]] = deque()
    try:
        for item in items:
            window.append(asyncio.ensure_future(work(item)))
            if len(window) >= size:
                yield await window.popleft()
        while window:
            yield await window.popleft()
    finally:
        for task in window:
            task.cancel()
        if window:
            await asyncio.wait(window)
