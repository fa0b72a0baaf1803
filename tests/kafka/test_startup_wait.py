"""A process started before its broker waits for it (``--wait-for-broker``), says so in two
lines, and gives up with a clear error when the time is up."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from modstream.errors import BrokerUnavailable, ConfigError
from modstream.kafka.access import check_access
from modstream.kafka.broker import EmbeddedBroker, free_loopback_port
from modstream.kafka.settings import KafkaSettings


async def test_a_broker_that_starts_later_is_waited_for_and_its_answer_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_loopback_port()
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", startup_wait_s=60)

    async def start_late() -> EmbeddedBroker:
        await asyncio.sleep(2.0)
        return await EmbeddedBroker(port).__aenter__()

    caplog.set_level(logging.INFO, logger="modstream.kafka")
    late = asyncio.create_task(start_late())
    started = time.monotonic()
    try:
        await check_access(settings)
        waited = time.monotonic() - started
    finally:
        await (await late).__aexit__(None, None, None)
    assert 2.0 <= waited < 60
    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith(f"waiting up to 60 s for the Kafka cluster at 127.0.0.1:{port}")
               for line in lines), lines  # fmt: skip
    assert any(f"127.0.0.1:{port} answered after" in line for line in lines), lines


async def test_the_wait_ends_with_broker_unavailable_saying_how_long_it_waited() -> None:
    absent = f"127.0.0.1:{free_loopback_port()}"
    settings = KafkaSettings(bootstrap_servers=absent, startup_wait_s=1.5)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"after waiting 2 s$|after waiting 1 s$") as err:
        await check_access(settings, timeout_s=1.0)
    assert 1.5 <= time.monotonic() - started < 10
    assert err.value.kind == "broker_unavailable"


async def test_without_a_wait_an_absent_broker_fails_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="no Kafka broker answered") as err:
        absent = f"127.0.0.1:{free_loopback_port()}"
        await check_access(KafkaSettings(bootstrap_servers=absent), timeout_s=1.0)
    assert "waiting" not in str(err.value)
    assert time.monotonic() - started < 1.5


def test_a_negative_wait_is_refused_naming_the_flag() -> None:
    with pytest.raises(ConfigError, match="--wait-for-broker -1 is not 0 or more seconds"):
        KafkaSettings(bootstrap_servers="127.0.0.1:9092", startup_wait_s=-1)
