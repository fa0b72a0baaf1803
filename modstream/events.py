"""The image event: the contract between connectors, which produce it, and the pipeline.

A connector turns whatever its source speaks (a Jetstream commit, a Mastodon status, an S3
notification, a line of a backfill file) into :class:`ImageEvent` s on ``images.incoming``; the
scorer reads them back with :func:`modstream.pipeline.stream.records.parse_event`. Both sides
import it from here, and neither imports the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["ImageEvent", "event_id_for"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageEvent:
    """One image to score. ``id`` is stable across replays, so duplicates can be told apart."""

    id: str
    url: str
    source: str
    observed_at: float  # unix seconds when the source saw it; the round trip starts here
    meta: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "source": self.source,
            "observed_at": self.observed_at,
            "meta": self.meta,
        }

    def encode(self) -> bytes:
        return orjson.dumps(self.fields())


def event_id_for(url: str) -> str:
    """The default id of an event that came without one: a hash of its URL."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]
