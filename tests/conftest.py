"""Shared fixtures: a throw-away OpenVINO model cache and real scorers for whole test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from modstream.models.capabilities import cpu_flags
from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.scorer import Scorer, ScorerConfig

ScorerConfigFactory = Callable[..., ScorerConfig]


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


def pytest_report_header() -> str:
    flags = cpu_flags()
    native = sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16"})
    return f"cpu flags that decide the scoring path: {', '.join(native) or 'none readable'}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List the path each CPU-dependent test took here (``record_property("cpu_path", ...)``)."""
    lines = [
        f"{report.nodeid}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for key, value in getattr(report, "user_properties", ())
        if key == "cpu_path"
    ]
    if lines:
        terminalreporter.section("paths taken on this CPU")
        for line in lines:
            terminalreporter.line(line)
