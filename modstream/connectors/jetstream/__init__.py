"""``--source jetstream``: image posts from the Bluesky firehose, through Jetstream's websocket.

Files: ``frames.py`` (pure: a frame -> the images of a post, with their at-uri ids, alt text
and self-labels), ``cursor.py`` (pure: the subscription URL, the rewound cursor, repeats seen
twice), ``source.py`` (the websocket, reconnects, positions).
"""

from __future__ import annotations

from modstream.connectors.jetstream.source import DEFAULT_URL, JetstreamOptions, JetstreamSource
from modstream.connectors.options import refuse_argument

__all__ = ["DEFAULT_URL", "OPTIONS", "JetstreamOptions", "JetstreamSource", "create"]

OPTIONS = JetstreamOptions


def create(options: JetstreamOptions, argument: str | None) -> JetstreamSource:
    refuse_argument("jetstream", argument, instead="set the address with --jetstream-url")
    return JetstreamSource(options)
