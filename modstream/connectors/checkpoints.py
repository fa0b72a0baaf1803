"""Where connectors keep their positions: one small JSON file per stream in a state directory.

Why a directory rather than a compacted Kafka topic: a checkpoint must survive the development
broker, which keeps topics only in memory; it is readable and editable by an operator (rewinding a
backfill is editing one number); and a connector that owns a stream is one process, so nothing
needs to share it. A deployment mounts the directory as a volume (``deploy/``). A Kafka-backed
store would implement the same :class:`CheckpointStore` protocol.

Writes are atomic (temporary file, fsync, rename), so a kill -9 leaves the old or the new
checkpoint, never half of one.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Protocol

import orjson

__all__ = ["CheckpointStore", "DirectoryCheckpoints", "MemoryCheckpoints", "default_state_dir"]


class CheckpointStore(Protocol):
    def load(self, key: str) -> str | None: ...

    def save(self, key: str, position: str) -> None: ...


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
        try:
            data = orjson.loads(self.path_for(key).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise OSError(f"unreadable checkpoint {self.path_for(key)}: {exc}") from exc
        position = data.get("position") if isinstance(data, dict) else None
        return str(position) if position is not None else None

    def save(self, key: str, position: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(key)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        body = orjson.dumps({"key": key, "position": position, "saved_at": time.time()})
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
        self.positions: dict[str, str] = {}

    def load(self, key: str) -> str | None:
        return self.positions.get(key)

    def save(self, key: str, position: str) -> None:
        self.positions[key] = position
