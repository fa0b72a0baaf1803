"""Shared fixtures: a throw-away OpenVINO model cache, real scorers for whole test modules, and
``cpu_path``, with which a test whose path depends on the CPU (bf16 or not) says which one ran."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from requirements import check_environment
from scorerconfigs import scorer_config

from modstream.demo.imageserver import ImageServer
from modstream.models.capabilities import cpu_flags
from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.scorer import Scorer, ScorerConfig

ScorerConfigFactory = Callable[..., ScorerConfig]


@pytest.fixture(scope="session")
def scorer_settings(ov_cache_dir: Path) -> ScorerConfig:
    """The scorer as the commands configure it by default (fast mode), cached for the session."""
    return scorer_config(ov_cache_dir, preprocessing=Preprocessing.FAST)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def image_server() -> AsyncIterator[ImageServer]:
    """The bundled samples and the hostile endpoints, on a loopback port."""
    async with ImageServer() as server:
        yield server


CPU_PATH = "cpu path"  # the user property a test records with the ``cpu_path`` fixture


@pytest.fixture
def cpu_path(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record which CPU-dependent path this test took (``cpu_path("screen at bf16")``): the run's
    summary lists every such test with its path, so a CPU without bf16 never narrows a test
    silently. The line also lands in the test's report (``user_properties``, junit XML)."""

    def record(path: str) -> None:
        request.node.user_properties.append((CPU_PATH, path))

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One section naming the path each CPU-dependent test took on this machine."""
    lines = [
        f"{report.nodeid}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == CPU_PATH
    ]
    if lines:
        terminalreporter.write_sep("-", "CPU-dependent paths taken here")
        for line in sorted(lines):
            terminalreporter.write_line(line)


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
        return scorer_config(ov_cache_dir, **overrides)

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
