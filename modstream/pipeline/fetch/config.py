"""Limits for fetching untrusted image URLs (kept apart from the fetcher so it imports lightly)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modstream import __version__
from modstream.pipeline.fetch.addresses import IPNetwork


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchConfig:
    total_timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    per_host_limit: int = 8
    pool_limit: int = 100
    allow_cidrs: tuple[IPNetwork, ...] = ()
    # file: URLs are refused unless a root is given; then only files below it (after resolving
    # every symlink and ``..``) are read. For backfills of local storage.
    file_root: Path | None = None
    user_agent: str = field(default=f"modstream/{__version__} (+image moderation)")
