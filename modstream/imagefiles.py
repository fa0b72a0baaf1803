"""Image files on disk, known by their bytes: a walk in a stable, resumable order.

A file is an image when its first bytes are the signature (magic number) of a format the decoder
reads (:mod:`modstream.media`: JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF, and the videos MP4, MOV and
WebM), whatever its name: image hosts store uploads under extensionless hash names. Every other
file is *skipped* with a reason (an SVG, an HTML page, an empty file), handed to the caller to
report, never dropped without a word.

Shared by ``modstream score`` (directories given on the command line), ``eval --dirs`` and the
backfill connector.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from modstream.media import ISO_STILL_BRANDS, labels, sniff

__all__ = ["ISO_STILL_BRANDS", "Skipped", "image_format", "non_image_reason", "walk_images"]

_HEAD_BYTES = 512


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file a walk passed over, and why (``"an SVG drawing: only raster images are scored"``)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def image_format(head: bytes) -> str | None:
    """The format whose signature ``head`` (a file's first bytes) starts with, or ``None``."""
    medium = sniff(head)
    return None if medium is None else medium.name


def non_image_reason(head: bytes) -> str:
    """Why a file whose first bytes are ``head`` is not scored, in a few words."""
    if not head:
        return "an empty file"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing: only raster images are scored"
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page, not an image"
    if head[4:8] == b"ftyp":
        return "an image format that is not decoded (HEIC, HEIF)"
    if b"\x00" not in head:
        return "text, not an image"
    return f"not an image in a supported format ({labels()})"


def _head(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(_HEAD_BYTES)
    except OSError:
        return None


def walk_images(root: Path, on_skip: Callable[[Skipped], None] | None = None) -> Iterator[Path]:
    """Image files below ``root`` (by their bytes), in the order of their path components.

    Files and folders of a folder are visited together in name order, so the paths come in
    lexicographic order of ``relative_path.parts``: a walk resumes after a given path by skipping
    every path whose parts sort at or before it. Symlinked folders are not followed. A regular
    file that is not an image goes to ``on_skip`` with its reason.
    """
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from walk_images(Path(entry.path), on_skip)
        elif entry.is_file():
            head = _head(entry.path)
            if head is not None and image_format(head) is not None:
                yield Path(entry.path)
            elif on_skip is not None:
                reason = "unreadable" if head is None else non_image_reason(head)
                on_skip(Skipped(Path(entry.path), reason))
