"""Repeats a live source replays after a reconnect, recognised by event id.

A reconnect starts a little before the last position seen (a rewound Jetstream cursor, a Mastodon
timeline page): the events seen twice are skipped by the same process, so a dropped connection
publishes nothing twice. A restarted process starts with an empty memory; its repeats are
recognisable downstream by ``id``.
"""

from __future__ import annotations

from collections import deque

__all__ = ["RecentIds"]


class RecentIds:
    """The last ``capacity`` event ids seen, to skip the repeats a rewound cursor replays."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._order: deque[str] = deque()
        self._members: set[str] = set()

    def first_sighting(self, event_id: str) -> bool:
        """Remember ``event_id``; ``False`` if it was seen recently (a repeat)."""
        if event_id in self._members:
            return False
        self._members.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.capacity:
            self._members.discard(self._order.popleft())
        return True

    def __len__(self) -> int:
        return len(self._order)
