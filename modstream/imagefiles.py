"""Image files on disk: which names count as images, and a walk in a stable, resumable order.

Shared by ``modstream score`` (directories given on the command line) and the backfill connector.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "is_image_name", "walk_images"]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"}
)


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def walk_images(root: Path) -> Iterator[Path]:
    """Image files below ``root``, in the order of their path components (names sorted).

    Files and folders of a folder are visited together in name order, so the paths come in
    lexicographic order of ``relative_path.parts``: a walk resumes after a given path by skipping
    every path whose parts sort at or before it. Symlinked folders are not followed.
    """
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from walk_images(Path(entry.path))
        elif entry.is_file() and is_image_name(entry.name):
            yield Path(entry.path)
