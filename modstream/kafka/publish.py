"""Publishing one record: acks=all, sent again while the broker is away, refusals for good typed.

aiokafka's errors are mapped to modstream's here, at the boundary (:func:`send_failure`), and
every retry reads the typed error's ``retriable``. aiokafka's own ``retriable`` flag cannot be
read instead: it marks a send that timed out while the broker was away (``KafkaTimeoutError``)
and a broker still starting (``BrokerNotAvailableError``) as not retriable, though sending again is
exactly what they need. The table:

- a record over the producer's ``max_request_size`` or the topic's ``max.message.bytes`` ->
  :class:`~modstream.errors.RecordTooLarge` (the size and the limit named);
- an ACL refusing the write -> :class:`~modstream.errors.BrokerDenied`;
- a record the broker rejects as invalid -> :class:`~modstream.errors.RecordRefused`;
- anything else from the client or the socket -> :class:`~modstream.errors.BrokerUnavailable`
  (retriable: the broker is away, electing a leader, or restarting).

A refused record is the caller's to answer (the scoring stream publishes an error record in its
place); a denial stops the caller. Neither is sent again, so neither stalls a partition.

An idempotent producer numbers its records per partition, and aiokafka does not take a refused
batch's numbers back: after the broker refuses a record, every later send to that partition fails
with ``OutOfOrderSequenceNumber``. So the publisher renews its producer (a new producer id starts
the numbers afresh) when the broker refuses a record or reports the numbering broken, once per
producer however many sends saw it; the sends caught in between are sent again on the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    CorruptRecordException,
    InvalidMessageError,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnknownProducerId,
    UnsupportedForMessageFormatError,
)

from modstream.backoff import Backoff, BackoffPolicy, is_retriable, retry
from modstream.errors import (
    BrokerDenied,
    BrokerUnavailable,
    ModstreamError,
    RecordRefused,
    RecordTooLarge,
)
from modstream.kafka.producers import MAX_REQUEST_BYTES, start_producer
from modstream.kafka.settings import KafkaSettings

__all__ = ["Publisher", "send_failure"]

log = logging.getLogger("modstream.kafka")

_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
_DENIED = (
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
_INVALID = (
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    InvalidTopicError,
    UnsupportedForMessageFormatError,
)
# The broker's word that an idempotent producer's numbering is broken: a new producer mends it.
_BROKEN_SEQUENCE = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
)
# aiokafka checks a record against max_request_size before sending, and says so in these words;
# the broker's own refusal (the topic's max.message.bytes) comes back without them.
_CLIENT_SIDE = "max_request_size"

OnRetry = Callable[[str, BaseException, float], None]  # topic, the typed error, the delay


def send_failure(error: BaseException, *, topic: str, size: int, limit: int = 0) -> ModstreamError:
    """The typed error for a failed send of ``size`` bytes to ``topic``. ``limit`` is the topic's
    ``max.message.bytes`` when the caller knows it (0: not known)."""
    if isinstance(error, _TOO_LARGE):
        if _CLIENT_SIDE in str(error):
            where, limit = "the producer's max_request_size", MAX_REQUEST_BYTES
        else:
            where = f"the max.message.bytes of {topic}"
        told = f"{limit:,} bytes ({where})" if limit else where
        return RecordTooLarge(
            f"a record of {size:,} bytes for {topic} is over the limit of {told}",
            size=size, limit=limit,
        )  # fmt: skip
    if isinstance(error, _DENIED):
        return BrokerDenied(
            f"the broker denies writing to {topic} ({type(error).__name__}): grant this "
            "process's principal WRITE on the topic (Kafka ACLs)"
        )
    if isinstance(error, _INVALID):
        return RecordRefused(f"the broker refused a record for {topic}: {error}")
    return BrokerUnavailable(f"cannot publish to {topic}: {error or type(error).__name__}")


class Publisher:
    """One producer (acks=all, idempotent where the broker grants it) that sends one record at a
    time, sending again with ``retry``'s backoff while the failure is retriable.

    ``async with Publisher(kafka, role=..., linger_ms=..., retry=...) as publisher``; the start
    raises typed errors (:class:`~modstream.errors.BrokerUnavailable` is retriable), the exit
    flushes and stops the producer."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        role: str,
        linger_ms: int,
        retry: BackoffPolicy,
        on_retry: OnRetry | None = None,
    ) -> None:
        self._kafka = kafka
        self._role = role
        self._linger_ms = linger_ms
        self._policy = retry
        self._on_retry = on_retry
        self._producer: AIOKafkaProducer | None = None
        self._generation = 0  # how many producers were started; a renewal starts the next
        self._renewing = asyncio.Lock()
        self.idempotent: bool | None = None  # known once started
        self.renewals = 0
        self._limits: dict[str, int] = {}  # topic -> max.message.bytes, asked once on refusal

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._producer = await self._start_producer()
        self._generation += 1

    async def _start_producer(self) -> AIOKafkaProducer:
        try:
            started = await start_producer(self._kafka, role=self._role, linger_ms=self._linger_ms)
        except (KafkaError, OSError) as exc:
            where = self._kafka.bootstrap_servers
            raise BrokerUnavailable(f"cannot start a producer at {where}: {exc}") from exc
        self.idempotent = started.idempotent
        return started.producer

    async def flush(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._producer.flush()

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        backoff: BackoffPolicy | None = None,
        max_attempts: int | None = None,
        on_retry: OnRetry | None = None,
    ) -> int:
        """Send until every in-sync replica acknowledges; return the record's offset. Raises the
        typed error once it is not retriable, or after ``max_attempts`` (None: no bound).
        ``backoff`` and ``on_retry`` replace the publisher's for this send."""
        told = on_retry or self._on_retry

        def failed(error: BaseException, delay: float) -> None:
            if told is not None:
                told(topic, error, delay)

        return await retry(
            lambda: self._send_once(topic, value, key, partition),
            retriable=is_retriable,
            backoff=Backoff(backoff or self._policy),
            max_attempts=max_attempts,
            on_retry=failed,
        )

    async def send_all(
        self,
        topic: str,
        records: Iterable[tuple[bytes, bytes | None]],
        *,
        max_attempts: int | None = None,
    ) -> int:
        """Send ``(key, value)`` records side by side (a value None: a tombstone); wait for every
        one, and return how many were sent."""
        sends = [self.send(topic, value, key=key, max_attempts=max_attempts)
                 for key, value in records]  # fmt: skip
        await asyncio.gather(*sends)
        return len(sends)

    async def _send_once(
        self, topic: str, value: bytes | None, key: bytes | None, partition: int | None
    ) -> int:
        producer, generation = self._producer, self._generation
        if producer is None:
            raise BrokerUnavailable(f"cannot publish to {topic}: the producer is not running")
        try:
            stored = await producer.send_and_wait(topic, value=value, key=key, partition=partition)
        except (KafkaError, OSError) as exc:
            too_large = isinstance(exc, _TOO_LARGE)
            broker_side = not (too_large and _CLIENT_SIDE in str(exc))
            limit = await self._topic_limit(topic) if too_large and broker_side else 0
            if self.idempotent and broker_side and isinstance(exc, _TOO_LARGE + _BROKEN_SEQUENCE):
                await self._renew(generation, exc)
            raise send_failure(exc, topic=topic, size=len(value or b""), limit=limit) from exc
        return int(stored.offset)

    async def _renew(self, generation: int, cause: BaseException) -> None:
        """Replace producer ``generation`` by a new one, unless another send already did."""
        async with self._renewing:
            old = self._producer
            if generation != self._generation or old is None:
                return
            log.info("renewing the producer: the broker refused a record or its numbering (%s)",
                     type(cause).__name__)  # fmt: skip
            self._producer = await self._start_producer()
            self._generation += 1
            self.renewals += 1
        with contextlib.suppress(KafkaError, OSError):
            await old.stop()

    async def _topic_limit(self, topic: str) -> int:
        """The topic's ``max.message.bytes``, asked of the broker (0 if it does not say)."""
        if topic not in self._limits:
            self._limits[topic] = await _describe_limit(self._kafka, topic)
        return self._limits[topic]


async def _describe_limit(kafka: KafkaSettings, topic: str) -> int:
    admin = AIOKafkaAdminClient(**kafka.client_options("admin"), request_timeout_ms=5_000)
    try:
        await admin.start()
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    except (KafkaError, OSError) as exc:
        log.debug("cannot read the max.message.bytes of %s: %s", topic, exc)
        return 0
    finally:
        await admin.close()
    for answer in answers:
        for resource in answer.resources:
            for entry in resource[4]:
                if entry[0] == "max.message.bytes" and str(entry[1]).isdigit():
                    return int(entry[1])
    return 0
