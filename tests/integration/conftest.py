"""Session-wide infrastructure for the integration tests: one real broker, one image server.

Every test gets its own topics and consumer group (:func:`support.unique_topics`), so tests share
the broker without seeing each other's records. Session fixtures live on the session event loop:
modules mark their tests ``pytest.mark.asyncio(loop_scope="session")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from modstream.demo.imageserver import ImageServer
from modstream.pipeline.broker import EmbeddedBroker
from modstream.pipeline.scorer import ScorerConfig


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenVINO's compiled-model cache for the run, kept out of the home directory."""
    return tmp_path_factory.mktemp("integration-openvino-cache")


@pytest.fixture(scope="session")
def scorer_settings(model_cache_dir: Path) -> ScorerConfig:
    return ScorerConfig(cache_dir=model_cache_dir)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedBroker]:
    """The embedded tansu broker, started once for the whole session."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    async with EmbeddedBroker(log_path=log_path) as started:
        yield started


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def image_server() -> AsyncIterator[ImageServer]:
    """The bundled samples and the hostile endpoints, on a loopback port."""
    async with ImageServer() as server:
        yield server
