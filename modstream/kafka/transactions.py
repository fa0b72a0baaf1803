"""Exactly once: an input partition's outputs and its consumed offset in one Kafka transaction.

    lanes = Transactions(kafka, group_id=..., role=...)      (the group sink owns it)
    await lanes.open(partition)    a transactional producer for the partition under a static id
                                   (GROUP.TOPIC.PARTITION): its start fences the partition's
                                   previous owner and waits for that owner's open transaction to
                                   end, so the committed offset read after it is the last word
    lanes.add(partition, offset, outputs)    a finished record's outputs, in any order
    lanes.release(partition, position)       every offset below ``position`` is finished: their
                                   outputs go into the partition's transaction, in offset order
    await lanes.commit()           each lane with something sent: every output acknowledged, the
                                   position added to the transaction, committed; the positions
                                   committed are returned
    await lanes.close(partitions)  a last commit, then the producers stop (a revocation, the exit)

One producer per input partition, not one per process: aiokafka sends the offsets with
TxnOffsetCommit v0 (no group generation, KIP-447), so only the static transactional id fences a
member whose partitions moved while it stalled. A transaction holds exactly the outputs of the
offsets below the position it commits: outputs are sent only once every earlier offset of their
partition is finished, so a record finished ahead of a slow one waits in memory, never in a
transaction, and a slow image never holds a transaction open.

Failures, typed at this boundary: a fenced producer, or one whose transaction the coordinator
timed out (``transaction.timeout.ms``, ``--transaction-timeout``, 60 s: the broker answers both
with the same error, so a member cannot tell a stall that cost it its partitions from one that
did not) -> :class:`~modstream.errors.ProducerFenced`, which stops the process (the records it
had not committed are answered by the partition's next owner, or by this process restarted);
anything else (the broker away, the coordinator moving, a send timing out) -> the transaction is
aborted, or its producer replaced (which aborts it), every output since the last commit goes
back to be sent again, and the next commit tries again: nothing is lost and nothing is
committed twice. A record the broker refuses for good inside a transaction (too large for its
topic) aborts it too; the output's ``instead`` answers it in the next one (the scoring stream's
error record).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    IllegalOperation,
    InvalidProducerEpoch,
    KafkaError,
    TransactionalIdAuthorizationFailed,
    UnsupportedVersionError,
)
from aiokafka.errors import ProducerFenced as KafkaFenced
from aiokafka.producer.transaction_manager import TransactionState

from modstream.errors import (
    BrokerDenied,
    BrokerUnavailable,
    ConfigError,
    ModstreamError,
    ProducerFenced,
    RecordRefused,
)
from modstream.kafka.access import stop_client
from modstream.kafka.producers import MAX_REQUEST_BYTES, start_transactional_producer
from modstream.kafka.publish import send_failure
from modstream.kafka.settings import KafkaSettings

__all__ = ["Output", "TransactionStatistics", "Transactions", "transactional_id"]

log = logging.getLogger("modstream.kafka")

Partition: TypeAlias = TopicPartition
_FENCED = (KafkaFenced, InvalidProducerEpoch)
_DENIED = (TransactionalIdAuthorizationFailed, ClusterAuthorizationFailedError)
_ABORT_WITHIN_S = 10.0  # an abort the broker does not answer: the producer is replaced instead


@dataclass(frozen=True, slots=True)
class Output:
    """One record a consumed record yields. ``instead`` answers it when the broker refuses it for
    good (None: the refusal stops the sink)."""

    topic: str
    value: bytes
    key: bytes | None = None
    instead: Callable[[RecordRefused], Output] | None = None


@dataclass(frozen=True, slots=True)
class TransactionStatistics:
    committed: int  # transactions committed
    aborted: int  # transactions aborted (their outputs sent again in the next)
    renewed: int  # producers replaced after a failure an abort could not mend
    lanes: int  # input partitions with a producer now


def transactional_id(group_id: str, partition: Partition) -> str:
    """The static id of an input partition's producer: one owner at a time, across restarts."""
    return f"{group_id}.{partition.topic}.{partition.partition}"


@dataclass(eq=False, slots=True)
class _Lane:
    partition: Partition
    producer: AIOKafkaProducer
    finished: dict[int, tuple[Output, ...]] = field(default_factory=dict)  # not yet released
    queue: list[tuple[int, list[Output]]] = field(default_factory=list)  # released, uncommitted
    sent: int = 0  # how many queue entries are in the open transaction
    acks: list[tuple[int, int, asyncio.Future[object]]] = field(default_factory=list)
    open: bool = False
    broken: BaseException | None = None  # a send failed: abort before anything else
    stale: bool = False  # its producer was stopped and a new one could not start yet
    pump: asyncio.Task[None] | None = None  # sending the released outputs, if under way
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Transactions:
    """The transactional producers of the input partitions a member owns; see the module."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        group_id: str,
        role: str,
        linger_ms: int = 2,
        timeout_s: float = 60.0,
    ) -> None:
        self._kafka = kafka
        self._timeout_ms = round(timeout_s * 1000)
        self._group_id = group_id
        self._role = role
        self._linger_ms = linger_ms
        self._lanes: dict[Partition, _Lane] = {}
        self._committed = self._aborted = self._renewed = 0

    # -- lanes -------------------------------------------------------------------------------

    async def open(self, partition: Partition) -> None:
        """A producer for ``partition`` (fencing its previous owner); raises BrokerUnavailable
        while the broker is away (the caller retries)."""
        if partition in self._lanes:
            return
        _quiet_fenced_futures(asyncio.get_running_loop())
        self._lanes[partition] = _Lane(partition, await self._producer(partition))

    async def close(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Commit what the partitions have finished, then stop their producers; the positions
        committed. A failed last commit leaves its records to the next owner (replayed once:
        their outputs were never committed)."""
        leaving = [p for p in partitions if p in self._lanes]
        committed: dict[Partition, int] = {}
        fenced: ProducerFenced | None = None
        try:
            committed = await self.commit(leaving)
        except ProducerFenced as exc:
            fenced = exc
        except (ModstreamError, KafkaError, OSError) as exc:
            log.warning("the last commit of %s failed (%s); their next owner answers the "
                        "records since the one before", sorted(leaving), exc)  # fmt: skip
        for partition in leaving:
            lane = self._lanes.pop(partition)
            if lane.pump is not None:
                lane.pump.cancel()
                await asyncio.gather(lane.pump, return_exceptions=True)
            await stop_client(lane.producer)
        if fenced is not None:
            raise fenced
        return committed

    async def close_all(self) -> dict[Partition, int]:
        return await self.close(list(self._lanes))

    # -- outputs -----------------------------------------------------------------------------

    def add(self, partition: Partition, offset: int, outputs: Iterable[Output]) -> None:
        lane = self._lanes.get(partition)
        if lane is not None:
            lane.finished[offset] = tuple(outputs)

    def release(self, partition: Partition, position: int) -> None:
        """Every consumed offset of ``partition`` below ``position`` is finished: queue their
        outputs, in offset order, to be sent into the open transaction."""
        lane = self._lanes.get(partition)
        if lane is None:
            return
        ready = sorted(offset for offset in lane.finished if offset < position)
        if not ready:
            return
        lane.queue.extend((offset, list(lane.finished.pop(offset))) for offset in ready)
        if lane.pump is None or lane.pump.done():
            lane.pump = asyncio.create_task(self._pump(lane), name="txn-send")

    async def _pump(self, lane: _Lane) -> None:
        """Send the queued outputs into the lane's transaction (begun on the first); what goes
        wrong is the next commit's to handle."""
        async with lane.lock:
            try:
                await self._send_queued(lane)
            except Exception as exc:  # noqa: BLE001 - kept for the commit, which raises or aborts
                lane.broken = lane.broken or exc

    async def _send_queued(self, lane: _Lane) -> None:
        if lane.broken is not None or lane.stale:
            return  # the next commit aborts, or replaces the producer, first
        try:
            while lane.sent < len(lane.queue):
                if not lane.open:
                    await lane.producer.begin_transaction()
                    lane.open = True
                index = lane.sent
                _offset, outputs = lane.queue[index]
                for position, output in enumerate(outputs):
                    ack = await self._send(lane, index, position, output)
                    lane.acks.append((index, position, ack))
                lane.sent += 1
        except (KafkaError, OSError, IllegalOperation) as exc:  # not in a transaction any more
            lane.broken = exc

    async def _send(
        self, lane: _Lane, index: int, position: int, output: Output
    ) -> asyncio.Future[object]:
        """Append one output to the transaction; one refused before it is sent (over the
        producer's limit) is replaced by its ``instead`` at once."""
        try:
            ack: asyncio.Future[object] = await lane.producer.send(
                output.topic, output.value, key=output.key
            )
        except (KafkaError, OSError) as exc:
            failure = send_failure(exc, topic=output.topic, size=len(output.value))
            if not isinstance(failure, RecordRefused) or output.instead is None:
                raise
            answer = output.instead(failure)
            lane.queue[index][1][position] = answer
            ack = await lane.producer.send(answer.topic, answer.value, key=answer.key)
        return ack

    # -- commits -----------------------------------------------------------------------------

    async def commit(self, partitions: Iterable[Partition] | None = None) -> dict[Partition, int]:
        """Commit each lane's open transaction with its position; the positions committed.
        Raises ProducerFenced (the process must stop) or a refusal without ``instead``; any
        other failure aborts the transaction, to be sent again and committed next time."""
        lanes = [self._lanes[p] for p in (self._lanes if partitions is None else partitions)
                 if p in self._lanes]  # fmt: skip
        results = await asyncio.gather(*(self._commit(lane) for lane in lanes),
                                       return_exceptions=True)  # fmt: skip
        committed: dict[Partition, int] = {}
        failure: BaseException | None = None
        for lane, result in zip(lanes, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
            elif result is not None:
                committed[lane.partition] = result
        if failure is not None:
            raise failure
        return committed

    async def _commit(self, lane: _Lane) -> int | None:
        async with lane.lock:
            if lane.stale and not await self._renew(lane):
                return None
            await self._send_queued(lane)
            refused = await self._acknowledged(lane)  # a fenced send raises here
            if _fatal(lane.producer):
                raise self._fenced(lane, lane.broken or KafkaFenced())
            if not refused and lane.broken is None and (not lane.open or lane.sent == 0):
                return None
            cause: BaseException | None = refused[0] if refused else lane.broken
            if cause is not None:
                await self._abort(lane, cause)
                return None
            position = lane.queue[lane.sent - 1][0] + 1
            try:
                await lane.producer.send_offsets_to_transaction(
                    {lane.partition: position}, self._group_id
                )
                await lane.producer.commit_transaction()
            except _FENCED as exc:
                raise self._fenced(lane, exc) from exc
            except (KafkaError, OSError, IllegalOperation) as exc:
                await self._abort(lane, exc)
                return None
            del lane.queue[: lane.sent]
            lane.sent, lane.acks, lane.open = 0, [], False
            self._committed += 1
            return position

    async def _acknowledged(self, lane: _Lane) -> list[RecordRefused]:
        """Wait for every send of the transaction; the ones the broker refused for good are
        replaced by their ``instead`` for the next attempt (and returned); a retriable failure
        marks the lane broken."""
        outcomes = await asyncio.gather(*(ack for _i, _p, ack in lane.acks),
                                        return_exceptions=True)  # fmt: skip
        refused: list[RecordRefused] = []
        for (index, position, _ack), outcome in zip(lane.acks, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                continue
            if isinstance(outcome, _FENCED):
                raise self._fenced(lane, outcome) from outcome
            output = lane.queue[index][1][position]
            failure = send_failure(outcome, topic=output.topic, size=len(output.value),
                                   limit=MAX_REQUEST_BYTES)  # fmt: skip
            if isinstance(failure, RecordRefused):
                if output.instead is None:
                    raise failure from outcome
                lane.queue[index][1][position] = output.instead(failure)
                refused.append(failure)
            elif not failure.retriable:
                raise failure from outcome
            elif lane.broken is None:
                lane.broken = outcome
        return refused

    async def _abort(self, lane: _Lane, cause: BaseException) -> None:
        """End the open transaction without its outputs; they are all sent again next time."""
        if isinstance(cause, _FENCED) or _fatal(lane.producer):
            raise self._fenced(lane, cause) from cause
        self._aborted += 1
        log.info("aborting the transaction of %s:%d (%s); its outputs are sent again",
                 lane.partition.topic, lane.partition.partition,
                 f"{type(cause).__name__}: {cause}")  # fmt: skip
        renew = True
        if lane.open:
            try:
                async with asyncio.timeout(_ABORT_WITHIN_S):
                    await lane.producer.abort_transaction()
                renew = False
            except _FENCED as exc:
                raise self._fenced(lane, exc) from exc
            except (KafkaError, OSError, TimeoutError):
                pass
        else:
            renew = lane.broken is not None and not isinstance(lane.broken, RecordRefused)
        lane.sent, lane.acks, lane.open, lane.broken = 0, [], False, None
        if renew:
            await self._renew(lane)

    async def _renew(self, lane: _Lane) -> bool:
        """Replace the lane's producer (the new one's start aborts the old one's transaction);
        False while the broker is away (the next commit tries again)."""
        if not lane.stale:
            await stop_client(lane.producer)
            lane.stale = True
        try:
            lane.producer = await self._producer(lane.partition)
        except BrokerUnavailable as exc:
            log.info("cannot replace the producer of %s:%d yet: %s", lane.partition.topic,
                     lane.partition.partition, exc)  # fmt: skip
            return False
        lane.stale = False
        self._renewed += 1
        return True

    def _fenced(self, lane: _Lane, cause: BaseException) -> ProducerFenced:
        return ProducerFenced(
            f"the transactions of {lane.partition.topic}:{lane.partition.partition} were taken "
            f"over by a newer producer ({type(cause).__name__}: the partition moved while this "
            "process stalled, or a transaction outlived transaction.timeout.ms); stopping so "
            "that its new owner alone commits it"
        )

    async def _producer(self, partition: Partition) -> AIOKafkaProducer:
        try:
            return await start_transactional_producer(
                self._kafka, role=self._role, linger_ms=self._linger_ms,
                transactional_id=transactional_id(self._group_id, partition),
                timeout_ms=self._timeout_ms,
            )  # fmt: skip
        except _DENIED as exc:
            named = transactional_id(self._group_id, partition)
            raise BrokerDenied(
                f"the broker denies the transactional id {named} ({type(exc).__name__}): grant "
                f"this process's principal WRITE and DESCRIBE on transactional ids "
                f"{self._group_id}.* (Kafka ACLs)"
            ) from exc
        except UnsupportedVersionError as exc:
            raise ConfigError(
                f"--delivery exactly-once is unsupported by the broker at "
                f"{self._kafka.bootstrap_servers} ({exc}): it grants no transactions; use Apache "
                "Kafka, or --delivery at-least-once"
            ) from exc
        except (KafkaError, OSError) as exc:  # the broker away, or another member starting it
            where = self._kafka.bootstrap_servers
            raise BrokerUnavailable(
                f"cannot start the transactional producer of {partition.topic}:"
                f"{partition.partition} at {where}: {exc}"
            ) from exc

    def statistics(self) -> TransactionStatistics:
        return TransactionStatistics(
            committed=self._committed, aborted=self._aborted, renewed=self._renewed,
            lanes=len(self._lanes),
        )  # fmt: skip


def _fatal(producer: AIOKafkaProducer) -> bool:
    """Has aiokafka put the producer's transactions in its fatal state (fenced by a newer
    producer, or refused for good)? Sending raises IllegalOperation then, and ending the
    transaction fails an assertion: nothing but a new producer can go on, and only the
    partition's owner may start one."""
    manager = getattr(producer, "_txn_manager", None)
    return manager is not None and manager.state is TransactionState.FATAL_ERROR


def _quiet_fenced_futures(loop: asyncio.AbstractEventLoop) -> None:
    """aiokafka leaves each fatal transaction error on a future that only a next transaction
    would await, so the stop a fence causes ended in a traceback per lane ("Future exception was
    never retrieved"); those alone are dropped, everything else goes to the loop's handler."""
    previous = loop.get_exception_handler()
    if getattr(previous, "_modstream_fenced", False):
        return

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), _FENCED) and "future" in context:
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    handler._modstream_fenced = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
