"""Whether the cluster answers, told in a few lines: gone, still gone (with the retries), back.

    probe: a Metadata request every probe_every_s, on a connection of its own
      -> OutageTracker.observe(answered, now)         (pure: no I/O, no clock)
      -> Gone | StillGone | Back -> one line of modstream.kafka

aiokafka retries everything by itself while a broker is away and logs each attempt; what a user
needs is when the broker went, that modstream is waiting for it and what is waiting with it, and
when it came back. So a :class:`BrokerWatch` asks the cluster once a second on a connection of its
own and says so in three kinds of line::

    broker at HOST unreachable since 00:23:02 ([Errno 111] Connect call failed ...); retrying
    broker at HOST still unreachable after 12 s; 238 records waiting; 14 publish retries
    broker at HOST is back after 30.2 s; 41 publish retries

The summary comes every ``summary_every_s`` while the outage lasts. The clients report their
retries (:meth:`BrokerWatch.retried`) and what waits on the broker
(:meth:`BrokerWatch.add_backlog`), and log their own retries only while the watch has not
declared an outage (:attr:`BrokerWatch.unreachable`). Everything in one process that talks to
one cluster shares one watch (:func:`broker_watch`), so a process with a connector and a scorer
says each thing once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from modstream.kafka.access import describe_failure, open_connection
from modstream.kafka.settings import KafkaSettings

__all__ = ["Back", "BrokerWatch", "Gone", "OutageTracker", "StillGone", "broker_watch"]

log = logging.getLogger("modstream.kafka")


@dataclass(frozen=True, slots=True)
class Gone:
    since: float  # the tracker's clock: the last answer, or the start when none came yet
    reason: str


@dataclass(frozen=True, slots=True)
class StillGone:
    for_s: float
    retries: dict[str, int]


@dataclass(frozen=True, slots=True)
class Back:
    after_s: float
    retries: dict[str, int]
    first: bool  # the cluster had never answered: this is the start, not a recovery


class OutageTracker:
    """The outage as a state: declared after ``failures_to_declare`` unanswered probes in a row,
    summarised every ``summary_every_s`` while it lasts, over with the first answer."""

    def __init__(
        self, *, started_at: float, failures_to_declare: int = 2, summary_every_s: float = 10.0
    ) -> None:
        self.failures_to_declare = failures_to_declare
        self.summary_every_s = summary_every_s
        self._last_answer: float | None = None
        self._started_at = started_at
        self._failures = 0
        self._down_since: float | None = None
        self._next_summary = 0.0
        self._retries: Counter[str] = Counter()

    @property
    def unreachable(self) -> bool:
        return self._down_since is not None

    def retried(self, what: str) -> None:
        self._retries[what] += 1

    def observe(
        self, answered: bool, now: float, reason: str = ""
    ) -> Gone | StillGone | Back | None:
        if answered:
            self._failures = 0
            first, self._last_answer = self._last_answer is None, now
            down_since, self._down_since = self._down_since, None
            retries, self._retries = dict(self._retries), Counter()
            if down_since is None:
                return None
            return Back(after_s=now - down_since, retries=retries, first=first)
        self._failures += 1
        if self._down_since is None:
            if self._failures < self.failures_to_declare:
                return None
            since = self._started_at if self._last_answer is None else self._last_answer
            self._down_since = since
            self._next_summary = now + self.summary_every_s
            return Gone(since=since, reason=reason)
        if now < self._next_summary:
            return None
        self._next_summary = now + self.summary_every_s
        return StillGone(for_s=now - self._down_since, retries=dict(self._retries))


@dataclass(slots=True)
class _Backlogs:
    counters: dict[int, Callable[[], int]] = field(default_factory=dict)
    next_key: int = 0

    def total(self) -> int:
        return sum(count() for count in self.counters.values())


class BrokerWatch:
    """Probes one cluster and logs its outages; :meth:`run` until cancelled."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        probe_every_s: float = 1.0,
        timeout_s: float = 3.0,
        summary_every_s: float = 10.0,
    ) -> None:
        self.kafka = kafka
        self.probe_every_s = probe_every_s
        self.timeout_s = timeout_s
        self._tracker = OutageTracker(started_at=time.monotonic(), summary_every_s=summary_every_s)
        self._backlogs = _Backlogs()
        self._connection: AIOKafkaConnection | None = None

    @property
    def unreachable(self) -> bool:
        """Whether an outage is declared now (clients then count their retries, not log them)."""
        return self._tracker.unreachable

    def retried(self, what: str) -> None:
        """A client retried ``what`` (``publish``, ``commit``, ``start``): counted for the lines."""
        self._tracker.retried(what)

    def add_backlog(self, count: Callable[[], int]) -> Callable[[], None]:
        """Count ``count()`` records as waiting on the broker; returns the function that stops."""
        key = self._backlogs.next_key
        self._backlogs.next_key += 1
        self._backlogs.counters[key] = count

        def remove() -> None:
            self._backlogs.counters.pop(key, None)

        return remove

    async def run(self) -> None:
        try:
            while True:
                problem = await self._probe()
                self._tell(self._tracker.observe(problem is None, time.monotonic(), problem or ""))
                await asyncio.sleep(self.probe_every_s)
        finally:
            self._close()

    async def _probe(self) -> str | None:
        """``None`` when a server answered a Metadata request, else why none did."""
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._connection is None or not self._connection.connected():
                    self._close()
                    self._connection = await self._connect()
                await self._connection.send(MetadataRequest([]))
        except TimeoutError:
            self._close()
            return f"no answer within {self.timeout_s:g} s"
        except (OSError, KafkaError) as exc:
            self._close()
            return describe_failure(exc)
        return None

    async def _connect(self) -> AIOKafkaConnection:
        failure: BaseException | None = None
        for host, port in self.kafka.hosts:
            try:
                return await open_connection(self.kafka, host, port, timeout_s=self.timeout_s)
            except (OSError, KafkaError) as exc:  # the next server may answer
                failure = exc
        assert failure is not None  # settings name at least one server
        raise failure

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _tell(self, event: Gone | StillGone | Back | None) -> None:
        where = self.kafka.bootstrap_servers
        match event:
            case Gone(since=since, reason=reason):
                wall = time.time() - (time.monotonic() - since)
                log.warning("broker at %s unreachable since %s (%s); retrying", where,
                            time.strftime("%H:%M:%S", time.localtime(wall)), reason)  # fmt: skip
            case StillGone(for_s=for_s, retries=retries):
                log.warning("broker at %s still unreachable after %.0f s; %d records waiting%s",
                            where, for_s, self._backlogs.total(), _retries(retries))  # fmt: skip
            case Back(first=True, after_s=after_s):
                log.warning("broker at %s answers after %.1f s", where, after_s)
            case Back(after_s=after_s, retries=retries):
                log.warning("broker at %s is back after %.1f s%s", where, after_s,
                            _retries(retries))  # fmt: skip


def _retries(retries: dict[str, int]) -> str:
    """``; 14 publish retries, 2 commit retries``, or nothing when modstream retried nothing
    itself (aiokafka holds a send or a commit while it waits for a broker)."""
    if not retries:
        return ""
    return "; " + ", ".join(f"{count} {what} retries" for what, count in sorted(retries.items()))


@dataclass(slots=True)
class _Shared:
    watch: BrokerWatch
    task: asyncio.Task[None]
    users: int = 0


_shared: dict[tuple[int, str], _Shared] = {}


@contextlib.asynccontextmanager
async def broker_watch(kafka: KafkaSettings) -> AsyncIterator[BrokerWatch]:
    """The process's watch of this cluster (started by the first user, stopped by the last)."""
    key = (id(asyncio.get_running_loop()), kafka.bootstrap_servers)
    shared = _shared.get(key)
    if shared is None:
        watch = BrokerWatch(kafka)
        task = asyncio.create_task(watch.run(), name=f"watch {kafka.bootstrap_servers}")
        shared = _shared[key] = _Shared(watch, task)
    shared.users += 1
    try:
        yield shared.watch
    finally:
        shared.users -= 1
        if shared.users == 0:
            del _shared[key]
            shared.task.cancel()
            await asyncio.wait([shared.task])
