"""Kafka producers that are idempotent wherever the broker supports it, found out by asking.

An idempotent producer (``enable_idempotence=True``: a producer id and sequence numbers per
partition) lets the broker drop the duplicates its own retries would write, so a send retried
after a lost acknowledgement is stored once. Apache Kafka grants it; the embedded development
broker lists ``InitProducerId`` among its APIs but answers it with an error. So modstream does not
guess from the broker's name or its API list: :func:`start_producer` starts an idempotent producer
and, only when the broker refuses the producer id, falls back to a plain one (acks=all either
way) and says so once per process in the log. An unreachable broker is not a refusal: that error
propagates, and the caller retries.

aiokafka logs the refusal at ERROR before it raises it. That line is the answer to our question,
not a failure, so a filter drops it, and only it: the record of that one message, logged by the
task that is asking, while it asks. (The producer's own sender task, which asks again after a
broker restart, inherits the context variable but is another task: its refusals are logged.)
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    UnknownError,
    UnsupportedVersionError,
)

from modstream.kafka.access import start_client
from modstream.kafka.settings import KafkaSettings

__all__ = ["MAX_REQUEST_BYTES", "StartedProducer", "start_producer", "start_transactional_producer"]

log = logging.getLogger("modstream.kafka")

# What a broker answers InitProducerId with when it does not grant producer ids.
# The largest record a producer sends (Kafka's default; the brokers' own default limit per topic,
# max.message.bytes, is as large plus a batch header): a larger one is refused before it is sent.
MAX_REQUEST_BYTES = 1_048_576

_REFUSALS = (UnknownError, UnsupportedVersionError, ClusterAuthorizationFailedError)
_REFUSAL_LOGGER = "aiokafka.producer.sender"
_REFUSAL_MESSAGE = "Unexpected error during InitProducerIdRequest"

_asking: contextvars.ContextVar[asyncio.Task[object] | None] = contextvars.ContextVar(
    "asking_for_a_producer_id", default=None
)
_told: set[str] = set()  # the bootstrap servers whose refusal was logged at WARNING


class _ProbeRefusalFilter(logging.Filter):
    """Drops aiokafka's ERROR line about a refused producer id while we are asking for one."""

    def filter(self, record: logging.LogRecord) -> bool:
        asking = _asking.get()
        if asking is None or not str(record.msg).startswith(_REFUSAL_MESSAGE):
            return True
        return asking is not asyncio.current_task()


logging.getLogger(_REFUSAL_LOGGER).addFilter(_ProbeRefusalFilter())


@dataclass(frozen=True, slots=True)
class StartedProducer:
    producer: AIOKafkaProducer
    idempotent: bool


async def start_producer(kafka: KafkaSettings, *, role: str, linger_ms: int) -> StartedProducer:
    """A started producer with acks=all, idempotent if the broker grants producer ids."""
    try:
        producer = await _ask_for_idempotence(kafka, role, linger_ms)
    except _REFUSALS as exc:
        servers = kafka.bootstrap_servers
        level = logging.DEBUG if servers in _told else logging.WARNING
        _told.add(servers)
        log.log(level, "the broker at %s does not grant idempotent producers (%s): modstream "
                "publishes without them, so a retried send may be stored twice", servers,
                exc)  # fmt: skip
        producer = await _start(kafka, role, linger_ms, idempotent=False)
        return StartedProducer(producer, idempotent=False)
    return StartedProducer(producer, idempotent=True)


async def _ask_for_idempotence(kafka: KafkaSettings, role: str, linger_ms: int) -> AIOKafkaProducer:
    asking = _asking.set(asyncio.current_task())
    try:
        return await _start(kafka, role, linger_ms, idempotent=True)
    finally:
        _asking.reset(asking)


async def start_transactional_producer(
    kafka: KafkaSettings, *, role: str, linger_ms: int, transactional_id: str, timeout_ms: int
) -> AIOKafkaProducer:
    """A started producer for transactions under ``transactional_id`` (idempotent, acks=all)
    whose transactions the coordinator aborts after ``timeout_ms``; its start fences an older
    producer of the same id. aiokafka's errors propagate."""
    return await _start(kafka, role, linger_ms, idempotent=True,
                        transactional=(transactional_id, timeout_ms))  # fmt: skip


async def _start(
    kafka: KafkaSettings,
    role: str,
    linger_ms: int,
    *,
    idempotent: bool,
    transactional: tuple[str, int] | None = None,
) -> AIOKafkaProducer:
    options: dict[str, Any] = {}
    if transactional is not None:
        options["transactional_id"], options["transaction_timeout_ms"] = transactional
    producer = AIOKafkaProducer(
        **kafka.client_options(role),
        acks="all",
        linger_ms=linger_ms,
        max_request_size=MAX_REQUEST_BYTES,
        enable_idempotence=idempotent,
        **options,
    )
    return await start_client(producer)
