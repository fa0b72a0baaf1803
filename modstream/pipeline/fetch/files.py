"""``file:`` URLs, read only below an allowed root: the backfill's way to local storage.

Off unless a root is given: ``--allow-file-root``, or the folder of a backfill that runs in the
scorer's own process (``connectors.backfill.scorer_file_root``). The path is resolved first (every
symlink and ``..`` followed), and refused unless the result lies below the resolved root, so
neither ``../`` nor a symlink can lead out of it; the resolved path is then opened with
``O_NOFOLLOW``. The body is capped like an HTTP body.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from yarl import URL

from modstream.errors import BlockedPath, BodyTooLarge, InvalidUrl, NotFound

__all__ = ["is_file_url", "read_file_url"]


def is_file_url(url: str) -> bool:
    return url[:5].lower() == "file:"


def resolve_file_url(url: str, root: Path | None) -> Path:
    """The real path ``url`` names, checked against ``root``; raises a typed error otherwise."""
    if root is None:
        raise InvalidUrl(
            "file: URLs are refused: the scorer reads local files only below a root it is given "
            "(--allow-file-root DIR; a folder backfill in the scorer's own process needs none)"
        )
    try:
        parsed = URL(url)
    except ValueError as exc:  # an unclosed IPv6 bracket, a port out of range
        raise InvalidUrl(f"invalid URL {url!r}: {exc}") from exc
    if parsed.host not in (None, "", "localhost"):
        raise InvalidUrl(f"file: URL {url!r} names a remote host; only local files are read")
    requested = Path(parsed.path)
    if not requested.is_absolute():
        raise InvalidUrl(f"file: URL {url!r} has no absolute path")
    base = root.resolve()
    try:
        real = requested.resolve(strict=True)
    except FileNotFoundError:
        raise NotFound(f"no such file: {requested}") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a permission error
        raise NotFound(f"cannot resolve {requested}: {exc}") from None
    except ValueError:  # os.stat refuses a path with a NUL byte (%00)
        raise InvalidUrl(f"file: URL {url!r} has a NUL byte in its path") from None
    if not real.is_relative_to(base):
        raise BlockedPath(f"refused to read {requested}: it resolves outside the allowed root")
    return real


def read_file_url(url: str, root: Path | None, max_bytes: int) -> tuple[bytes, float]:
    """Read the file (blocking: call it on a thread); return the body and the seconds taken."""
    started = time.perf_counter()
    path = resolve_file_url(url, root)
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer; no effect on files.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise NotFound(f"cannot open {path}: {exc.strerror}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):  # a directory, a FIFO, a device
        os.close(descriptor)
        raise NotFound(f"{path} is not a regular file")
    with os.fdopen(descriptor, "rb") as handle:
        size = status.st_size
        if size > max_bytes:
            raise BodyTooLarge(f"{path} has {size} bytes, more than the {max_bytes}-byte limit")
        body = handle.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise BodyTooLarge(f"{path} grew past the {max_bytes}-byte limit while being read")
    return body, time.perf_counter() - started
