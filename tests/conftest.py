"""Shared fixtures: a throw-away OpenVINO model cache and real scorers for whole test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from requirements import check_environment

from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.scorer import Scorer, ScorerConfig

ScorerConfigFactory = Callable[..., ScorerConfig]


def pytest_configure(config: pytest.Config) -> None:
    """A MODSTREAM_REQUIRE_* variable with a value that is neither yes nor no, or naming no
    tier, stops the run before any test: a typo must not turn a required tier into a skip."""
    try:
        check_environment()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def ov_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenVINO's compiled-model cache for this run, kept out of the home directory."""
    return tmp_path_factory.mktemp("openvino-cache")


@pytest.fixture(scope="session")
def make_scorer_config(ov_cache_dir: Path) -> ScorerConfigFactory:
    """Build a :class:`ScorerConfig` that caches compiled models under ``ov_cache_dir``."""

    def build(**overrides: Any) -> ScorerConfig:
        overrides.setdefault("cache_dir", ov_cache_dir)
        return ScorerConfig(**overrides)

    return build


# Module-scoped scorers run on the session event loop: tests that use them must be marked
# ``@pytest.mark.asyncio(loop_scope="session")`` (or set it in the module's ``pytestmark``).


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def exact_scorer(make_scorer_config: ScorerConfigFactory) -> AsyncIterator[Scorer]:
    """A real CPU scorer with the reference ("exact") preprocessing, shared by one module."""
    async with await Scorer.start(make_scorer_config(preprocessing=Preprocessing.EXACT)) as scorer:
        yield scorer


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fast_scorer(make_scorer_config: ScorerConfigFactory) -> AsyncIterator[Scorer]:
    """A real CPU scorer with the "fast" preprocessing, shared by one module."""
    async with await Scorer.start(make_scorer_config(preprocessing=Preprocessing.FAST)) as scorer:
        yield scorer
