"""Reading ``images.reviewed`` back: ``--export`` and the decided ids a console starts with."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson

from modstream.errors import ConfigError
from modstream.kafka.reading import read_topic
from modstream.kafka.settings import KafkaSettings

__all__ = ["decided_ids", "export_decisions"]


async def export_decisions(kafka: KafkaSettings, topic: str, path: Path) -> int:
    """Write every decision on ``topic`` to ``path`` as JSON lines; return how many."""
    written = 0
    with path.open("wb") as out:
        async for value in read_topic(kafka, topic):
            out.write(value.rstrip(b"\n") + b"\n")
            written += 1
    return written


async def decided_ids(kafka: KafkaSettings, topic: str, *, last: int) -> list[str]:
    """The item ids among the last ``last`` decisions of each partition (none if no topic)."""
    ids: list[str] = []
    with contextlib.suppress(ConfigError):
        async for value in read_topic(kafka, topic, last=last):
            with contextlib.suppress(orjson.JSONDecodeError):
                decided = orjson.loads(value)
                if isinstance(decided, dict) and isinstance(decided.get("id"), str):
                    ids.append(decided["id"])
    return ids
