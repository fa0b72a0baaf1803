"""Where a source starts: the pure decision between its checkpoint and starting over.

A checkpoint belongs to the cluster it was made against. It records the end offsets the
incoming topic's partitions had when it was saved; at start the topic must still reach them. A
topic that ends earlier (or does not exist) is not the one the checkpointed events went to: a
new embedded broker (it keeps topics in memory), another cluster, a recreated topic. Resuming
would skip events that this cluster never received, so the source starts over, with one log line
saying why. ``--source-option restart=true`` (:class:`Restarting`) starts over on purpose. A
checkpoint that records no offsets (saved by an earlier modstream) is trusted, as it was then.

Starting over means what it means for the source: a backfill replays every image, Jetstream and
Mastodon read from now on (a cursor made against another cluster names events this one
never had).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Self

from modstream.connectors.base import Emission, Source, SourceStatistics
from modstream.connectors.checkpoints import Checkpoint

__all__ = ["Restarting", "Resume", "StartOver", "decide_start", "restarts"]


@dataclass(frozen=True, slots=True)
class Resume:
    position: str
    note: str | None = None  # worth a log line (a checkpoint with no offsets)


@dataclass(frozen=True, slots=True)
class StartOver:
    reason: str | None  # None: there was nothing to resume from


def decide_start(
    checkpoint: Checkpoint | None, topic: str, ends: Mapping[int, int] | None, *, restart: bool
) -> Resume | StartOver:
    """Resume after ``checkpoint`` only if ``topic`` (now ending at ``ends``) still has its events.

    ``ends`` is ``None`` where no cluster is asked (a publisher built without one): the
    checkpoint is trusted.
    """
    if checkpoint is None:
        return StartOver(None)
    if restart:
        return StartOver(f"restart=true: the checkpoint at {checkpoint.position} is ignored")
    saved = checkpoint.end_offsets()
    if ends is None:
        return Resume(checkpoint.position)
    if saved is None:
        return Resume(checkpoint.position, note="the checkpoint records no Kafka offsets")
    if checkpoint.topic != topic:
        return StartOver(
            f"the checkpoint at {checkpoint.position} was made for topic {checkpoint.topic}, "
            f"this run publishes to {topic}"
        )
    for partition, end in sorted(saved.items()):
        now = ends.get(partition)
        if now is None or now < end:
            where = "does not exist" if now is None else f"ends at offset {now}"
            return StartOver(
                f"the checkpoint at {checkpoint.position} was saved when partition {partition} "
                f"of {topic} ended at offset {end}, and on this cluster it {where}: its events "
                "are not here (a new embedded broker or another cluster)"
            )
    return Resume(checkpoint.position)


class Restarting:
    """A source run with ``restart=true``: itself in every way, but started over."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.name = source.name

    def __repr__(self) -> str:
        return f"Restarting({self.source!r})"

    @property
    def checkpoint_key(self) -> str:
        return self.source.checkpoint_key

    async def __aenter__(self) -> Self:
        await self.source.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.source.__aexit__(*exc_info)

    def emissions(self, resume_from: str | None) -> AsyncIterator[Emission]:
        return self.source.emissions(resume_from)

    def statistics(self) -> SourceStatistics:
        return self.source.statistics()


def restarts(source: Source) -> bool:
    return isinstance(source, Restarting)
