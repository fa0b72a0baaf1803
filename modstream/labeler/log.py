"""The label log in memory: every stored label in sequence order, what the two XRPC routes read.

``seq`` is the label's position in the durable log (the label topic's offset + 1, so it starts at
1 and never repeats). :meth:`LabelLog.since` is what ``subscribeLabels`` replays from a cursor,
:meth:`LabelLog.wait_beyond` what it waits on for live labels, :meth:`LabelLog.query` what
``queryLabels`` answers. The log holds every label (a labeler's log is small next to the
firehose: one label per labelled post and value); the query's index is rebuilt from it at start.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from modstream.labeler.labels import Label

__all__ = ["LabelLog", "LabelPage", "Sequenced"]


@dataclass(frozen=True, slots=True)
class Sequenced:
    seq: int
    label: Label


@dataclass(frozen=True, slots=True)
class LabelPage:
    labels: tuple[Label, ...]
    cursor: str | None  # where the next page starts; None: no more


class LabelLog:
    def __init__(self) -> None:
        self._entries: list[Sequenced] = []
        self._seqs: list[int] = []
        self._grew = asyncio.Event()
        self._closed = False

    @property
    def head(self) -> int:
        """The newest seq (0 while the log is empty)."""
        return self._seqs[-1] if self._seqs else 0

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, seq: int, label: Label) -> None:
        """Add a stored label; seqs only grow (a replayed older one is ignored)."""
        if seq <= self.head:
            return
        self._entries.append(Sequenced(seq, label))
        self._seqs.append(seq)
        self._grew.set()
        self._grew = asyncio.Event()

    def since(self, seq: int, limit: int | None = None) -> list[Sequenced]:
        """The labels after ``seq``, oldest first, at most ``limit``."""
        start = bisect.bisect_right(self._seqs, seq)
        end = len(self._entries) if limit is None else start + limit
        return self._entries[start:end]

    async def wait_beyond(self, seq: int) -> None:
        """Return once the log holds a label after ``seq`` (at once if it does), or it closed."""
        while self.head <= seq and not self._closed:
            await self._grew.wait()

    def close(self) -> None:
        """Wake every waiter: the labeler is stopping."""
        self._closed = True
        self._grew.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def query(
        self,
        uri_patterns: Sequence[str],
        sources: Sequence[str] = (),
        *,
        cursor: int = 0,
        limit: int = 50,
    ) -> LabelPage:
        """Labels whose uri matches a pattern (exact, or a prefix ending in ``*``) and whose src
        is one of ``sources`` (any when empty), after ``cursor`` (a seq), oldest first."""
        exact = {pattern for pattern in uri_patterns if not pattern.endswith("*")}
        prefixes = tuple(pattern[:-1] for pattern in uri_patterns if pattern.endswith("*"))
        wanted = set(sources)
        found: list[Sequenced] = []
        for entry in self.since(cursor):
            label = entry.label
            if wanted and label.src not in wanted:
                continue
            if label.uri in exact or (prefixes and label.uri.startswith(prefixes)):
                found.append(entry)
                if len(found) > limit:
                    break
        page, more = found[:limit], len(found) > limit
        return LabelPage(
            labels=tuple(entry.label for entry in page),
            cursor=str(page[-1].seq) if more and page else None,
        )
