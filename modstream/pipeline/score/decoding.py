"""The decode pool: image bytes (or a file) in, the model's input crop out, on worker threads.

Sits between admission and the lanes: ``score()`` hands each admitted image to :class:`DecodePool`
and awaits a :class:`Decoded`. PIL and the JPEG decoder release the GIL, so the pool keeps every
core busy while the devices infer; nothing here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modstream.errors import DecodeFailed, ImageError
from modstream.models.decode import DecodeLimits, read_limited
from modstream.models.pdq import PdqHashing
from modstream.models.preprocess import PreparedImage, Preprocessing, prepare

__all__ = ["DecodePool", "Decoded", "decode_job"]


@dataclass(frozen=True, slots=True)
class Decoded:
    """One image ready for a lane, with its bytes kept for a second, exact decode."""

    image: PreparedImage
    sha256: str
    data: bytes
    read_s: float
    decode_s: float


def decode_job(
    source: bytes | Path,
    mode: Preprocessing,
    limits: DecodeLimits,
    digest: str | None,
    hashing: PdqHashing = PdqHashing.OFF,
) -> Decoded:
    """Runs on the decode pool: read (for a path), hash the bytes, prepare the model input
    (with its PDQ hash when ``hashing`` asks for it)."""
    started = time.perf_counter()
    data = read_limited(source, limits) if isinstance(source, Path) else source
    read_s = time.perf_counter() - started
    try:
        image = prepare(data, mode, limits, hashing)
    except ImageError:
        raise
    except Exception as exc:
        raise DecodeFailed(f"the decoder failed unexpectedly: {type(exc).__name__}: {exc}") from exc
    if digest is None:
        digest = hashlib.sha256(data).hexdigest()
    decode_s = time.perf_counter() - started - read_s
    return Decoded(image=image, sha256=digest, data=data, read_s=read_s, decode_s=decode_s)


class DecodePool:
    """A bounded thread pool running :func:`decode_job` for the event loop."""

    def __init__(self, workers: int, limits: DecodeLimits, loop: asyncio.AbstractEventLoop) -> None:
        self._limits = limits
        self._loop = loop
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="modstream-decode")

    async def decode(
        self,
        source: bytes | Path,
        mode: Preprocessing,
        digest: str | None,
        hashing: PdqHashing = PdqHashing.OFF,
    ) -> Decoded:
        """``digest``: the hex sha256 of ``source`` when the caller has it (saves hashing)."""
        return await self._loop.run_in_executor(
            self._pool, decode_job, source, mode, self._limits, digest, hashing
        )

    def shutdown(self) -> None:
        """Stop the threads without waiting; decodes not yet started are cancelled."""
        self._pool.shutdown(wait=False, cancel_futures=True)
