"""Reading a source's emissions in tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from modstream.connectors.base import Emission

__all__ = ["take_events"]


async def take_events(stream: AsyncIterator[Emission], events: int) -> list[Emission]:
    """Emissions until they hold ``events`` events (10 s at most)."""
    taken: list[Emission] = []
    async with asyncio.timeout(10):
        while sum(len(e.events) for e in taken) < events:
            taken.append(await anext(stream))
    return taken
