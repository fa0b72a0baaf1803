"""``--source mastodon``: statuses with images from a Mastodon server's streaming API.

Files: ``sse.py`` (pure: the event-stream grammar), ``statuses.py`` (pure: a status -> its image
events), ``endpoints.py`` (pure: stream and timeline URLs, the streaming host),
``source.py`` (the SSE connection, gap backfill, reconnects).
"""

from __future__ import annotations

import os

from modstream.connectors.mastodon.source import TOKEN_VARIABLE, MastodonOptions, MastodonSource
from modstream.connectors.options import refuse_argument

__all__ = ["OPTIONS", "TOKEN_VARIABLE", "MastodonOptions", "MastodonSource", "create"]

OPTIONS = MastodonOptions


def create(options: MastodonOptions, argument: str | None) -> MastodonSource:
    refuse_argument("mastodon", argument, instead="set the server with --mastodon-url")
    token = os.environ.get(TOKEN_VARIABLE, "").strip() or None
    return MastodonSource(options, token=token)
