"""Talking to a secured Apache Kafka: TLS, mutual TLS, SASL SCRAM and PLAIN, through one
:class:`KafkaSettings`; wrong credentials or an untrusted certificate stop ``modstream run`` at
once with one line naming the cause, never with retries that hide it.

One Apache Kafka node for the module, with three secured listeners beside its plaintext one (see
``apache_kafka/secured.py``). The tests read results back through the plaintext listener.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from apache_kafka import ApacheKafka
from apache_kafka.secured import USER, Certificates, make_certificates, secured_config
from children import reap, terminate
from requirements import unavailable

from modstream.demo.imageserver import ImageServer
from modstream.errors import BrokerTlsFailed
from modstream.kafka.access import check_access
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.producers import start_producer
from modstream.kafka.settings import PASSWORD_VARIABLE, KafkaSettings, Secret
from modstream.pipeline.stream.topics import Topics

from .support import outputs_of_process, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")
NAME, PASSWORD = USER


@dataclass(frozen=True, slots=True)
class Secured:
    kafka: ApacheKafka
    certificates: Certificates


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def secured(
    kafka_jars: str | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Secured]:
    if kafka_jars is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    directory = tmp_path_factory.mktemp("secured-kafka")
    certificates = make_certificates(directory / "tls")
    kafka = ApacheKafka(
        directory / "node",
        kafka_jars,
        config=secured_config(certificates),
        listeners=("SSL", "SASL_SSL", "SASL_PLAINTEXT"),
        scram_users={NAME: PASSWORD},
    )
    async with kafka:
        yield Secured(kafka, certificates)


def _settings(secured: Secured, case: str, *, password: str = PASSWORD) -> KafkaSettings:
    certificates = secured.certificates
    if case == "SSL (mutual TLS)":
        return KafkaSettings(
            bootstrap_servers=secured.kafka.address("SSL"),
            security_protocol="SSL",
            ssl_cafile=certificates.ca,
            ssl_certfile=certificates.client_cert,
            ssl_keyfile=certificates.client_key,
        )
    protocol, mechanism = case.split(" ")
    return KafkaSettings(
        bootstrap_servers=secured.kafka.address(protocol),
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=NAME,
        sasl_password=Secret(password),
        ssl_cafile=certificates.ca if protocol == "SASL_SSL" else None,
    )


CASES = [
    "SSL (mutual TLS)",
    "SASL_SSL SCRAM-SHA-256",
    "SASL_SSL SCRAM-SHA-512",
    "SASL_PLAINTEXT PLAIN",
    "SASL_PLAINTEXT SCRAM-SHA-512",
]


@pytest.mark.parametrize("case", CASES)
async def test_every_client_kind_connects_through_one_settings_object(
    secured: Secured, case: str
) -> None:
    """With one KafkaSettings, the access check, the topic admin, an idempotent producer and a
    group consumer all authenticate, and a record makes the round trip."""
    settings = _settings(secured, case)
    topic = f"secured-{uuid.uuid4().hex[:8]}"
    await check_access(settings)
    assert await ensure_topics(settings, [TopicSpec(topic, 1)]) == [topic]
    started = await start_producer(settings, role="test", linger_ms=0)
    try:
        assert started.idempotent
        await started.producer.send_and_wait(topic, case.encode())
    finally:
        await started.producer.stop()
    consumer = AIOKafkaConsumer(
        topic, **settings.client_options("test"), group_id=unique_group("secured"),
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert message.value == case.encode()


def _flags(secured: Secured, *, cafile: Path | None = None) -> list[str]:
    """``modstream run`` flags for SCRAM-SHA-512 over TLS."""
    return [
        "--bootstrap-servers", secured.kafka.address("SASL_SSL"),
        "--kafka-security-protocol", "SASL_SSL", "--kafka-sasl-mechanism", "SCRAM-SHA-512",
        "--kafka-sasl-username", NAME,
        "--kafka-ssl-cafile", str(cafile or secured.certificates.ca),
    ]  # fmt: skip


def _environment(password: str) -> dict[str, str]:
    return {**os.environ, PASSWORD_VARIABLE: password}


async def test_run_over_scram_and_tls_scores_every_event(
    secured: Secured, image_server: ImageServer, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """``modstream run`` with SCRAM-SHA-512 over TLS, the password from the environment: the
    connector, the scorer and the topic admin all get in, and every event gets one output."""
    assert image_server.served is not None
    urls = [*image_server.served.image_urls()[:3], f"{image_server.served.base_url}/bad/html"]
    prefix = f"secured-run-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable, "-m", "modstream", "run", *_flags(secured),
        "--topic-prefix", prefix, "--group-id", unique_group("secured-run"),
        "--allow-cidr", "127.0.0.0/8", "--cache-dir", str(ov_cache_dir),
        "--metrics-port", "0", "--role", "all", "--source", "synthetic",
        "--source-option", f"urls={','.join(urls)}", "--source-option", "rate=40",
        "--source-option", "events=10",
    ]  # fmt: skip
    log = tmp_path / "run.log"
    process = _spawn(command, _environment(PASSWORD), log)
    try:
        reader = await outputs_of_process(
            secured.kafka.bootstrap_servers, Topics.with_prefix(prefix), 10, process
        )
        ids = sorted(output.record["id"] for output in reader.outputs)
        await reader.__aexit__(None, None, None)
        assert ids == sorted(f"synthetic-{index}" for index in range(10))
        returncode = await terminate(process)
        output = log.read_text()
        assert returncode == 0, output[-2000:]
        assert PASSWORD not in output
    finally:
        reap(process)


def _spawn(command: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, env=environment, stdout=sink, stderr=subprocess.STDOUT)


async def _run_failing(
    secured: Secured, flags: list[str], password: str
) -> tuple[int, list[str], float, str]:
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream", "run", *flags, "--metrics-port", "0",
         "--topic-prefix", f"refused-{uuid.uuid4().hex[:6]}"],
        env=_environment(password), capture_output=True, timeout=60,
    )  # fmt: skip
    stderr = done.stderr.decode()
    return done.returncode, stderr.strip().splitlines(), time.monotonic() - started, stderr


async def test_a_wrong_password_stops_the_run_at_once_in_one_line(secured: Secured) -> None:
    """A refused SCRAM password: exit 1 within seconds, one line naming the user and the cause,
    and neither the right nor the wrong password anywhere in the output."""
    code, lines, seconds, stderr = await _run_failing(secured, _flags(secured), "not-the-password")
    assert code == 1, stderr
    assert lines[-1].startswith("modstream run: broker_auth_failed: the broker at 127.0.0.1:")
    assert f"refused SCRAM-SHA-512 authentication as '{NAME}'" in lines[-1]
    assert "not-the-password" not in stderr and PASSWORD not in stderr
    assert "Traceback" not in stderr
    assert seconds < 30


async def test_an_untrusted_broker_certificate_stops_the_run_at_once(secured: Secured) -> None:
    """A CA file that did not sign the broker's certificate: exit 1 at once, naming TLS."""
    flags = _flags(secured, cafile=secured.certificates.stranger_ca)
    code, lines, seconds, stderr = await _run_failing(secured, flags, PASSWORD)
    assert code == 1, stderr
    assert lines[-1].startswith("modstream run: broker_tls_failed: TLS with the broker at")
    assert "CERTIFICATE_VERIFY_FAILED" in lines[-1]
    assert seconds < 30


async def test_a_listener_that_requires_a_client_certificate_refuses_none(
    secured: Secured,
) -> None:
    """The mutual-TLS listener without our client certificate: a TLS failure, not a retry."""
    settings = KafkaSettings(
        bootstrap_servers=secured.kafka.address("SSL"),
        security_protocol="SSL",
        ssl_cafile=secured.certificates.ca,
    )
    started = time.monotonic()
    with pytest.raises(BrokerTlsFailed) as caught:
        await check_access(settings)
    assert "requires a client certificate: --kafka-ssl-certfile" in str(caught.value)
    assert time.monotonic() - started < 15
