"""Session-wide infrastructure for the integration tests: one real broker, one image server.

Every test gets its own topics and consumer group (:func:`support.unique_topics`), so tests share
the broker without seeing each other's records. Session fixtures live on the session event loop:
modules mark their tests ``pytest.mark.asyncio(loop_scope="session")``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol

import pytest
import pytest_asyncio
from apache_kafka import (
    ApacheKafka,
    KafkaUnavailable,
    classpath_cache_dir,
    kafka_classpath,
    maven_repository,
)
from requirements import required, unavailable

from modstream.kafka.broker import EmbeddedBroker
from modstream.kafka.settings import KafkaSettings


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedBroker]:
    """The embedded tansu broker, started once for the whole session."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    async with EmbeddedBroker(log_path=log_path) as started:
        yield started


class Broker(Protocol):
    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def kafka(self) -> KafkaSettings: ...


_CLASSPATH = pytest.StashKey["str | KafkaUnavailable"]()


def _resolve_classpath() -> str | KafkaUnavailable:
    try:
        return kafka_classpath(classpath_cache_dir(), repository=maven_repository())
    except KafkaUnavailable as exc:
        return exc


def pytest_collection_finish(session: pytest.Session) -> None:
    """Resolve the Apache Kafka classpath before the first test, when a collected test needs it.

    Maven filling an empty local repository takes minutes, and pytest-timeout charges a session
    fixture's set-up to the test that first asks for it: resolved here, it counts against no
    test's 120 s, only against Maven's own deadline (``apache_kafka.RESOLVE_TIMEOUT_S``).
    """
    config = session.config
    needed = any("kafka_jars" in getattr(item, "fixturenames", ()) for item in session.items)
    if config.option.collectonly or not needed:
        return
    started = time.monotonic()
    outcome = config.stash[_CLASSPATH] = _resolve_classpath()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        seconds = time.monotonic() - started
        said = f"unavailable ({outcome})" if isinstance(outcome, KafkaUnavailable) else "ready"
        reporter.write_line(f"Apache Kafka classpath {said} after {seconds:.1f} s")


@pytest.fixture(scope="session")
def kafka_jars(pytestconfig: pytest.Config) -> str | None:
    """The Apache Kafka classpath (resolved before the first test), or ``None`` without Java
    or Maven. With MODSTREAM_REQUIRE_KAFKA=1 (CI) a missing tier is a failure, not a skip."""
    outcome = pytestconfig.stash.get(_CLASSPATH, None)
    if outcome is None:  # asked for in a way collection could not see (getfixturevalue)
        outcome = _resolve_classpath()
    if isinstance(outcome, KafkaUnavailable):
        if required("KAFKA"):
            pytest.fail(f"the Apache Kafka tier is required here but cannot run: {outcome}")
        return None
    return outcome


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
