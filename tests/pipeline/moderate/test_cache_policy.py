"""The score cache (LRU + TTL) and the decision policy."""

from __future__ import annotations

import pytest

from modstream.errors import ConfigError
from modstream.pipeline.moderate.cache import CacheConfig, CacheStatistics, TTLCache
from modstream.pipeline.moderate.policy import PRESETS, Decision, Policy, resolve_policy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_expire_after_ttl() -> None:
    """An entry is served until its TTL passes, then it is a miss."""
    clock = Clock()
    cache: TTLCache[int] = TTLCache(CacheConfig(max_entries=10, ttl_s=5.0), clock)
    cache.put("k", 1)
    clock.now = 4.9
    assert cache.get("k") == 1
    clock.now = 5.0
    assert cache.get("k") is None
    assert cache.statistics() == CacheStatistics(entries=0, hits=1, misses=1)


def test_cache_evicts_least_recently_used() -> None:
    """At capacity, the entry used longest ago goes first."""
    cache: TTLCache[int] = TTLCache(CacheConfig(max_entries=2, ttl_s=60.0), Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now fresher than b
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1 and cache.get("c") == 3


def test_presets_order_and_decisions() -> None:
    """brand-safety flags more than balanced, which flags more than auto-ban."""
    thresholds = [PRESETS[name].flag_at for name in ("brand-safety", "balanced", "auto-ban")]
    assert thresholds == sorted(thresholds)
    assert PRESETS["brand-safety"].decide(0.25) is Decision.FLAGGED
    assert PRESETS["auto-ban"].decide(0.25) is Decision.SAFE


def test_review_band() -> None:
    """Scores between review_at and flag_at go to review."""
    policy = Policy(name="t", flag_at=0.8, review_at=0.3)
    assert [policy.decide(s) for s in (0.1, 0.3, 0.79, 0.8)] == [
        Decision.SAFE, Decision.REVIEW, Decision.REVIEW, Decision.FLAGGED,
    ]  # fmt: skip


def test_resolve_policy_forms(tmp_path: pytest.TempPathFactory) -> None:
    """Presets, inline thresholds and JSON files all resolve; nonsense is a ConfigError."""
    assert resolve_policy("auto-ban").flag_at == 0.8
    inline = resolve_policy("flag=0.7,review=0.4")
    assert (inline.flag_at, inline.review_at) == (0.7, 0.4)
    path = tmp_path / "policy.json"  # type: ignore[operator]
    path.write_text('{"name": "mine", "flag_at": 0.66}')
    assert resolve_policy(str(path)) == Policy(name="mine", flag_at=0.66)
    for bad in ("nope", "flag=abc", "review=0.2", "flag=0.3,review=0.5"):
        with pytest.raises(ConfigError):
            resolve_policy(bad)
