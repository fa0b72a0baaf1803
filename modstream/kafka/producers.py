"""Kafka producers that are idempotent wherever the broker supports it, found out by asking.

An idempotent producer (``enable_idempotence=True``: a producer id and sequence numbers per
partition) lets the broker drop the duplicates its own retries would write, so a send retried
after a lost acknowledgement is stored once. Apache Kafka grants it; the embedded development
broker lists ``InitProducerId`` among its APIs but answers it with an error. So modstream does not
guess from the broker's name or its API list: :func:`start_producer` starts an idempotent producer
and, only when the broker refuses the producer id, falls back to a plain one (acks=all either
way) and says so once in the log. An unreachable broker is not a refusal: that error propagates,
and the caller retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    UnknownError,
    UnsupportedVersionError,
)

from modstream.kafka.access import start_client
from modstream.kafka.settings import KafkaSettings

__all__ = ["StartedProducer", "start_producer"]

log = logging.getLogger("modstream.kafka")

# What a broker answers InitProducerId with when it does not grant producer ids.
_REFUSALS = (UnknownError, UnsupportedVersionError, ClusterAuthorizationFailedError)


@dataclass(frozen=True, slots=True)
class StartedProducer:
    producer: AIOKafkaProducer
    idempotent: bool


async def start_producer(kafka: KafkaSettings, *, role: str, linger_ms: int) -> StartedProducer:
    """A started producer with acks=all, idempotent if the broker grants producer ids."""
    try:
        producer = await _start(kafka, role, linger_ms, idempotent=True)
    except _REFUSALS as exc:
        log.warning("the broker at %s does not grant idempotent producers (%s): the %s publishes "
                    "without them, so a retried send may be stored twice", kafka.bootstrap_servers,
                    exc, role)  # fmt: skip
        producer = await _start(kafka, role, linger_ms, idempotent=False)
        return StartedProducer(producer, idempotent=False)
    return StartedProducer(producer, idempotent=True)


async def _start(
    kafka: KafkaSettings, role: str, linger_ms: int, *, idempotent: bool
) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        **kafka.client_options(role),
        acks="all",
        linger_ms=linger_ms,
        enable_idempotence=idempotent,
    )
    return await start_client(producer)
