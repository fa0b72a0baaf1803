"""Where a Jetstream subscription starts: the pure decisions behind resuming.

Jetstream replays from ``cursor`` (unix microseconds, valid on any instance). After a dropped
connection or a restart the subscription starts a few seconds *before* the last position seen,
because events of one microsecond can straddle the drop; the events seen twice are recognised by
id (:class:`~modstream.connectors.recent.RecentIds`) and not published again by the same process.
"""

from __future__ import annotations

import urllib.parse

__all__ = ["parse_position", "resume_cursor", "subscribe_url"]


def subscribe_url(base: str, collections: tuple[str, ...], cursor: int | None) -> str:
    """``base`` with ``wantedCollections`` (unless it names its own) and ``cursor`` set."""
    parts = urllib.parse.urlsplit(base)
    query = [
        (key, value)
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if key != "cursor"
    ]
    if not any(key == "wantedCollections" for key, _ in query):
        query.extend(("wantedCollections", collection) for collection in collections)
    if cursor is not None:
        query.append(("cursor", str(cursor)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def resume_cursor(last_time_us: int | None, rewind_s: float) -> int | None:
    """The cursor to subscribe with: live (``None``) with no position, else a little before it."""
    if last_time_us is None:
        return None
    return max(0, last_time_us - round(rewind_s * 1_000_000))


def parse_position(position: str | None) -> int | None:
    """A saved position (``time_us`` as text), or ``None`` when there is none or it is unusable."""
    if position is None:
        return None
    try:
        value = int(position)
    except ValueError:
        return None
    return value if value >= 0 else None
