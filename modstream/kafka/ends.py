"""The end offsets of a topic's partitions, read with no consumer group: where a topic stands.

A connector's checkpoint records them when it is saved (:mod:`modstream.connectors.resume`) and
compares them with the topic's at start: a topic that no longer reaches them is not the one the
checkpointed events went to (a new embedded broker, another cluster), so the source starts over.
A cluster id cannot tell two embedded brokers apart: every tansu reports ``tansu_cluster``.

The end offsets are what the broker answers to ListOffsets(latest) (on tansu the start of the
last record batch plus one, not the log end); only comparisons of such answers on one topic are
made, and those grow with the log on any broker.
"""

from __future__ import annotations

import contextlib
from typing import Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from modstream.errors import BrokerUnavailable
from modstream.kafka.access import start_client
from modstream.kafka.settings import KafkaSettings

__all__ = ["TopicEnds"]


class TopicEnds:
    """A group-less client that answers :meth:`read`: ``{partition: end offset}`` of one topic."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self._consumer = AIOKafkaConsumer(**kafka.client_options("reader"),
                                          enable_auto_commit=False)  # fmt: skip

    def __repr__(self) -> str:
        return f"TopicEnds({self.topic!r})"

    async def __aenter__(self) -> Self:
        await start_client(self._consumer)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with contextlib.suppress(KafkaError, OSError):
            await self._consumer.stop()

    async def read(self) -> dict[int, int]:
        """The end offset of each partition; empty when the topic does not exist (yet).

        Raises :class:`BrokerUnavailable` (retriable) when the broker does not answer."""
        try:
            return await self._read()
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(f"cannot read the end offsets of {self.topic}: {exc}") from exc

    async def _read(self) -> dict[int, int]:
        # A fresh client knows no topics; the public topics() does not fill the metadata that
        # partitions_for_topic reads, so ask the client directly (as kafka.reading does).
        await self._consumer._client.force_metadata_update()
        numbers = self._consumer.partitions_for_topic(self.topic) or set()
        if not numbers:
            return {}
        partitions = [TopicPartition(self.topic, number) for number in sorted(numbers)]
        ends = await self._consumer.end_offsets(partitions)
        return {partition.partition: offset for partition, offset in ends.items()}
