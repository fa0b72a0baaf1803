"""Session-wide infrastructure for the integration tests: one real broker, one image server.

Every test gets its own topics and consumer group (:func:`support.unique_topics`), so tests share
the broker without seeing each other's records. Session fixtures live on the session event loop:
modules mark their tests ``pytest.mark.asyncio(loop_scope="session")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import pytest
import pytest_asyncio
from apache_kafka import ApacheKafka, KafkaUnavailable, kafka_classpath
from requirements import required, unavailable

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.score.scorer import ScorerConfig


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


class Broker(Protocol):
    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def kafka(self) -> KafkaSettings: ...


@pytest.fixture(scope="session")
def kafka_jars(pytestconfig: pytest.Config) -> str | None:
    """The Apache Kafka classpath (Maven resolves it once per pom), or ``None`` without Java or
    Maven. With MODSTREAM_REQUIRE_KAFKA=1 (CI) a missing tier is a failure, not a skip."""
    cache = Path(str(pytestconfig.cache.mkdir("apache-kafka"))) if pytestconfig.cache else None
    try:
        return kafka_classpath(cache or Path.home() / ".cache" / "modstream-tests")
    except KafkaUnavailable as exc:
        if required("KAFKA"):
            pytest.fail(f"the Apache Kafka tier is required here but cannot run: {exc}")
        return None


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def apache_kafka(
    kafka_jars: str | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApacheKafka | None]:
    """One Apache Kafka node (KRaft), started once for the session when Java and Maven exist."""
    if kafka_jars is None:
        yield None
        return
    async with ApacheKafka(tmp_path_factory.mktemp("apache-kafka"), kafka_jars) as kafka:
        yield kafka


@pytest.fixture(scope="session", params=["tansu", "kafka"])
def any_broker(
    request: pytest.FixtureRequest, broker: EmbeddedBroker, apache_kafka: ApacheKafka | None
) -> Broker:
    """Each suite that matters on both brokers runs twice: the embedded one, and Apache Kafka."""
    if request.param == "tansu":
        return broker
    if apache_kafka is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    return apache_kafka
