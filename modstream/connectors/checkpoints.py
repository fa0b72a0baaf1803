"""Where connectors keep their positions: one small JSON file per stream in a state directory.

Why a directory rather than a compacted Kafka topic: a checkpoint must survive the development
broker, which keeps topics only in memory; it is readable and editable by an operator (rewinding a
backfill is editing one number); and a connector that owns a stream is one process, so nothing
needs to share it. A deployment mounts the directory as a volume (``deploy/``). A Kafka-backed
store would implement the same :class:`CheckpointStore` protocol.

A checkpoint also records where the topic its events went to stood when it was saved (the end
offsets of its partitions): a checkpoint belongs to the cluster it was made against, and
:mod:`.resume` starts a source over when the topic no longer reaches them (a new embedded
broker, which keeps topics in memory, or another cluster).

Writes are atomic (temporary file, fsync, rename), so a kill -9 leaves the old or the new
checkpoint, never half of one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "DirectoryCheckpoints",
    "MemoryCheckpoints",
    "default_state_dir",
]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A saved position, and the end offsets of ``topic``'s partitions when it was saved
    (``None``: a checkpoint that records none, saved by an earlier modstream)."""

    position: str
    topic: str | None = None
    ends: tuple[tuple[int, int], ...] | None = None  # (partition, end offset), sorted

    def end_offsets(self) -> dict[int, int] | None:
        return None if self.ends is None else dict(self.ends)


class CheckpointStore(Protocol):
    def load(self, key: str) -> str | None: ...

    def read(self, key: str) -> Checkpoint | None: ...

    def save(
        self,
        key: str,
        position: str,
        *,
        topic: str | None = None,
        ends: Mapping[int, int] | None = None,
    ) -> None: ...


def _checkpoint(data: Any) -> Checkpoint | None:
    if not isinstance(data, dict) or data.get("position") is None:
        return None
    kafka = data.get("kafka")
    if not isinstance(kafka, dict) or not isinstance(kafka.get("ends"), dict):
        return Checkpoint(position=str(data["position"]))
    ends = tuple(sorted((int(number), int(end)) for number, end in kafka["ends"].items()))
    return Checkpoint(position=str(data["position"]), topic=str(kafka.get("topic")), ends=ends)


def default_state_dir() -> Path:
    """``$MODSTREAM_STATE_DIR``, else ``$XDG_STATE_HOME/modstream`` (``~/.local/state/...``)."""
    explicit = os.environ.get("MODSTREAM_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "modstream"


class DirectoryCheckpoints:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"DirectoryCheckpoints({str(self.directory)!r})"

    def path_for(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "source"
        return self.directory / f"{safe}.checkpoint.json"

    def load(self, key: str) -> str | None:
        checkpoint = self.read(key)
        return None if checkpoint is None else checkpoint.position

    def read(self, key: str) -> Checkpoint | None:
        try:
            return _checkpoint(orjson.loads(self.path_for(key).read_bytes()))
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError, ValueError) as exc:
            raise OSError(f"unreadable checkpoint {self.path_for(key)}: {exc}") from exc

    def save(
        self,
        key: str,
        position: str,
        *,
        topic: str | None = None,
        ends: Mapping[int, int] | None = None,
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(key)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        data: dict[str, Any] = {"key": key, "position": position, "saved_at": time.time()}
        if ends is not None:
            data["kafka"] = {
                "topic": topic,
                "ends": {str(n): end for n, end in sorted(ends.items())},
            }
        body = orjson.dumps(data)
        with temporary.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class MemoryCheckpoints:
    """Positions kept for the life of the process (the demo, tests, one-off runs)."""

    def __init__(self) -> None:
        self.checkpoints: dict[str, Checkpoint] = {}

    @property
    def positions(self) -> dict[str, str]:
        return {key: checkpoint.position for key, checkpoint in self.checkpoints.items()}

    def load(self, key: str) -> str | None:
        checkpoint = self.checkpoints.get(key)
        return None if checkpoint is None else checkpoint.position

    def read(self, key: str) -> Checkpoint | None:
        return self.checkpoints.get(key)

    def save(
        self,
        key: str,
        position: str,
        *,
        topic: str | None = None,
        ends: Mapping[int, int] | None = None,
    ) -> None:
        marks = None if ends is None else tuple(sorted(ends.items()))
        self.checkpoints[key] = Checkpoint(position=position, topic=topic, ends=marks)
