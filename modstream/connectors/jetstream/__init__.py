"""``--source jetstream``: image posts from the Bluesky firehose, through Jetstream's websocket.

Files: ``frames.py`` (pure: a frame -> the images of a post, with their at-uri ids, alt text
and self-labels), ``cursor.py`` (pure: the subscription URL, the rewound cursor, repeats seen
twice), ``source.py`` (the websocket, reconnects, positions).
"""

from __future__ import annotations

from modstream.connectors.jetstream.source import DEFAULT_URL, JetstreamOptions, JetstreamSource
from modstream.errors import ConfigError

__all__ = ["DEFAULT_URL", "OPTIONS", "JetstreamOptions", "JetstreamSource", "create"]

OPTIONS = JetstreamOptions


def create(options: JetstreamOptions, argument: str | None) -> JetstreamSource:
    if argument is not None:
        raise ConfigError(
            f"--source jetstream takes no argument (got {argument!r}); set the address with "
            "--jetstream-url"
        )
    return JetstreamSource(options)
