"""Server-sent events, decoded line by line: the pure half of the Mastodon stream.

Follows the event-stream grammar: ``field: value`` lines (one optional space after the colon),
``data`` lines joined with newlines, ``id`` remembered across events, a blank line dispatching
the event, and lines starting with ``:`` being comments (Mastodon's ``:thump`` heartbeat).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseDecoder", "SseEvent"]


@dataclass(frozen=True, slots=True)
class SseEvent:
    name: str  # "message" when the event named none
    data: str
    id: str | None  # the last event id the stream set, if any


class SseDecoder:
    """Feed it lines (without or with their line ending); it returns each complete event."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.comments = 0  # heartbeats and other comment lines seen
        self._name = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        field, _colon, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self.last_event_id = value
        return None  # "retry" and unknown fields are ignored

    def _dispatch(self) -> SseEvent | None:
        name, data = self._name or "message", self._data
        self._name, self._data = "", []
        if not data:
            return None
        return SseEvent(name, "\n".join(data), self.last_event_id)
