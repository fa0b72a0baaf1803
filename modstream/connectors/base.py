"""The seam every connector implements: a :class:`Source` yields :class:`Emission` s.

A source is an async context manager (``__aenter__`` connects or binds, and raises when it cannot:
that fails the run) whose :meth:`Source.emissions` yields the image events it sees, each batch
tagged with the *position* in the source's own stream after it (Jetstream ``time_us``, a Mastodon
status id, a line number). The publisher (:mod:`.publisher`) sends the events to Kafka and
persists a position only once every event up to it is acknowledged (acks=all), so a restart that
resumes from the saved position loses nothing and repeats at most a few events, recognisable by
``id``.

A source reconnects by itself after a dropped connection (counting it in ``reconnects``) and
counts frames it cannot read (``malformed``) without stopping. It raises
:class:`~modstream.errors.SourceError` only for what a retry cannot mend (a refused token, a bad
address), and its iterator ends only when the source is exhausted (a backfill).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, Self

from modstream.errors import SourceError, SourceUnavailable
from modstream.events import ImageEvent

__all__ = ["Emission", "Source", "SourceCounters", "SourceStatistics", "refusal_for_status"]

# The client errors a later request may get past: the server timed out waiting for us (408), or
# asks us to slow down (429). Every other 4xx says the request itself is wrong.
_PASSING_CLIENT_ERRORS = frozenset({408, 429})


def refusal_for_status(status: int, message: str) -> SourceError:
    """What a source's HTTP ``status`` (not 2xx) means: a 4xx other than 408 and 429 is a
    :class:`SourceError` a reconnect cannot mend; anything else :class:`SourceUnavailable`."""
    if 400 <= status < 500 and status not in _PASSING_CLIENT_ERRORS:
        return SourceError(message)
    return SourceUnavailable(message)


@dataclass(frozen=True, slots=True)
class Emission:
    """Events seen at one point of a source's stream (possibly none: a position-only emission).

    ``position`` is saved as the source's checkpoint once these events and those of every earlier
    emission are acknowledged by the broker; ``None`` leaves the checkpoint where it is.
    ``receipt``, when given, is resolved at that moment (or fails with the reason they could
    not be published): an upload webhook answers its caller only then.
    """

    events: tuple[ImageEvent, ...]
    position: str | None = None
    receipt: asyncio.Future[None] | None = None


@dataclass(frozen=True, slots=True)
class SourceStatistics:
    events: int  # image events emitted
    reconnects: int  # connections re-established after a drop
    malformed: int  # frames or payloads that could not be read, skipped
    connected: bool


class SourceCounters:
    """The mutable counters behind :class:`SourceStatistics`, kept by each source."""

    __slots__ = ("connected", "events", "malformed", "reconnects")

    def __init__(self) -> None:
        self.events = 0
        self.reconnects = 0
        self.malformed = 0
        self.connected = False

    def snapshot(self) -> SourceStatistics:
        return SourceStatistics(
            events=self.events,
            reconnects=self.reconnects,
            malformed=self.malformed,
            connected=self.connected,
        )


class Source(Protocol):
    """A live or finite stream of image events. See the module docstring for the contract."""

    name: str  # the source kind, e.g. "jetstream"; also the events' ``source`` field

    @property
    def checkpoint_key(self) -> str:
        """Names this stream's saved position, e.g. ``jetstream-jetstream2.us-east.bsky.net``."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def emissions(self, resume_from: str | None) -> AsyncIterator[Emission]:
        """Yield emissions, starting after ``resume_from`` (a saved position) when given."""
        ...

    def statistics(self) -> SourceStatistics: ...
