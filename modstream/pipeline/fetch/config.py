"""Limits for fetching untrusted image URLs (kept apart from the fetcher so it imports lightly)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from modstream import __version__
from modstream.backoff import BackoffPolicy
from modstream.pipeline.fetch.addresses import IPNetwork


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchConfig:
    # The whole fetch of one image, retries included (``--fetch-timeout``).
    total_timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    # A server that has not started its response within this is asked again (a hung request);
    # a response that has started may take the rest of total_timeout_s to arrive. None: a third
    # of total_timeout_s, so a hung first request leaves time for two more.
    response_timeout_s: float | None = None
    # A retriable failure (a timed-out attempt, a refused connection) is tried again with this
    # backoff, up to max_attempts in all, while total_timeout_s allows.
    max_attempts: int = 4
    retry: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(initial_s=0.25, max_s=2.0))
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    per_host_limit: int = 8
    pool_limit: int = 100
    allow_cidrs: tuple[IPNetwork, ...] = ()
    # file: URLs are refused unless a root is given; then only files below it (after resolving
    # every symlink and ``..``) are read. For backfills of local storage.
    file_root: Path | None = None
    user_agent: str = field(default=f"modstream/{__version__} (+image moderation)")

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.total_timeout_s, self.response_timeout, self.connect_timeout_s) <= 0:
            raise ValueError("fetch timeouts must be positive")

    @property
    def response_timeout(self) -> float:
        if self.response_timeout_s is None:
            return self.total_timeout_s / 3
        return self.response_timeout_s
