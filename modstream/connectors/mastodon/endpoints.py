"""Which Mastodon URLs a stream reads: the streaming endpoint and the timeline that fills gaps.

Streams (``stream`` option) and their REST twins:

========== ======================================== ==========================================
stream     SSE (on the streaming host)              timeline (on the server)
========== ======================================== ==========================================
public     /api/v1/streaming/public                 /api/v1/timelines/public
local      /api/v1/streaming/public/local           /api/v1/timelines/public?local=true
remote     /api/v1/streaming/public/remote          /api/v1/timelines/public?remote=true
hashtag    /api/v1/streaming/hashtag?tag=TAG        /api/v1/timelines/tag/TAG
========== ======================================== ==========================================

Every request asks for ``only_media=true``. The streaming host is the server's own unless
``/api/v2/instance`` names another (``configuration.urls.streaming``, a ``wss://`` URL whose
SSE twin is ``https://``).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

__all__ = ["STREAMS", "StreamEndpoints", "streaming_base_from_instance"]

STREAMS = ("public", "local", "remote", "hashtag")


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamEndpoints:
    server: str  # https://mastodon.example
    stream: str
    tag: str = ""

    def stream_url(self, streaming_base: str) -> tuple[str, dict[str, str]]:
        base = streaming_base.rstrip("/")
        path = {
            "public": "/api/v1/streaming/public",
            "local": "/api/v1/streaming/public/local",
            "remote": "/api/v1/streaming/public/remote",
            "hashtag": "/api/v1/streaming/hashtag",
        }[self.stream]
        query = {"only_media": "true"}
        if self.stream == "hashtag":
            query["tag"] = self.tag
        return base + path, query

    def timeline_url(self, *, min_id: str, limit: int) -> tuple[str, dict[str, str]]:
        base = self.server.rstrip("/")
        query = {"only_media": "true", "min_id": min_id, "limit": str(limit)}
        if self.stream == "hashtag":
            return f"{base}/api/v1/timelines/tag/{urllib.parse.quote(self.tag, safe='')}", query
        if self.stream in ("local", "remote"):
            query[self.stream] = "true"
        return f"{base}/api/v1/timelines/public", query


def streaming_base_from_instance(instance: Any, server: str) -> str:
    """The SSE base URL from an ``/api/v2/instance`` document, or ``server`` when it names none."""
    urls = instance.get("configuration", {}).get("urls", {}) if isinstance(instance, dict) else {}
    streaming = urls.get("streaming") if isinstance(urls, dict) else None
    if not isinstance(streaming, str):
        return server
    parts = urllib.parse.urlsplit(streaming)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("http", "https") or not parts.hostname:
        return server
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
