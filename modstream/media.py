"""The media modstream reads, each named once: its signature, its MIME type, its kind.

    format  MIME type         kind       signature (the first bytes)
    JPEG    image/jpeg        still      FF D8 FF
    PNG     image/png         animation  89 "PNG" 0D 0A 1A 0A (an APNG holds frames)
    GIF     image/gif         animation  "GIF87a", "GIF89a"
    WEBP    image/webp        animation  "RIFF" .... "WEBP"
    BMP     image/bmp         still      "BM" (and a header's worth of bytes)
    TIFF    image/tiff        still      "II*\\0", "MM\\0*"
    AVIF    image/avif        still      an ISO ftyp box of brand avif or avis
    MP4     video/mp4         video      an ISO ftyp box of any other brand but a still's
    MOV     video/quicktime   video      an ISO ftyp box of brand "qt  "
    WEBM    video/webm        video      the EBML magic 1A 45 DF A3 (Matroska, of which WebM
                                         is a profile; the video decoder reads its DocType)

A still is decoded by Pillow as one picture; an animation format by Pillow too, frame by frame
when it holds several (a one-frame GIF is scored as a still); a video by PyAV. Every entry point
that must know what bytes are asks :func:`sniff`: the folder walk of ``score``, ``eval`` and the
backfill (:mod:`modstream.imagefiles`), the decoder's allow-list (:mod:`modstream.models.decode`),
the video decoder (:mod:`modstream.models.video`), the review console's image route (the type
it serves the bytes as) and the upload webhook (which declared types are media at all). The
bytes decide, never a file's name or a server's ``Content-Type``: image hosts store uploads under
extensionless names, and a hostile server labels HTML as JPEG.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "FORMATS",
    "ISO_STILL_BRANDS",
    "PILLOW_FORMATS",
    "VIDEO_FORMATS",
    "Kind",
    "Medium",
    "declared_media",
    "labels",
    "sniff",
]


class Kind(enum.StrEnum):
    STILL = "still"
    ANIMATION = "animation"  # a format that can hold several frames
    VIDEO = "video"


# ISO media brands of still images (HEIF/HEIC, AVIF); every other brand of an ftyp box is a
# video container (mp4, isom, M4V, qt, 3gp, ...).
ISO_STILL_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"mif2", b"msf1", b"avif"}
    | {b"avis", b"avio"}
)
_QUICKTIME_BRANDS = frozenset({b"qt  "})


def _iso_brand(head: bytes) -> bytes | None:
    return head[8:12] if len(head) >= 12 and head[4:8] == b"ftyp" else None


@dataclass(frozen=True, slots=True)
class Medium:
    """One format: ``name`` as Pillow (or our video decoder) calls it, ``label`` as people do."""

    name: str
    label: str
    mime: str
    kind: Kind
    matches: Callable[[bytes], bool]

    def __repr__(self) -> str:
        return f"Medium({self.name})"


FORMATS: tuple[Medium, ...] = (
    Medium("JPEG", "JPEG", "image/jpeg", Kind.STILL, lambda h: h.startswith(b"\xff\xd8\xff")),
    Medium("PNG", "PNG", "image/png", Kind.ANIMATION,
           lambda h: h.startswith(b"\x89PNG\r\n\x1a\n")),
    Medium("GIF", "GIF", "image/gif", Kind.ANIMATION, lambda h: h[:6] in (b"GIF87a", b"GIF89a")),
    Medium("WEBP", "WebP", "image/webp", Kind.ANIMATION,
           lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP"),
    Medium("BMP", "BMP", "image/bmp", Kind.STILL, lambda h: h[:2] == b"BM" and len(h) >= 14),
    Medium("TIFF", "TIFF", "image/tiff", Kind.STILL, lambda h: h[:4] in (b"II*\x00", b"MM\x00*")),
    Medium("AVIF", "AVIF", "image/avif", Kind.STILL,
           lambda h: _iso_brand(h) in (b"avif", b"avis")),
    Medium("MOV", "MOV", "video/quicktime", Kind.VIDEO,
           lambda h: _iso_brand(h) in _QUICKTIME_BRANDS),
    Medium("MP4", "MP4", "video/mp4", Kind.VIDEO,
           lambda h: (brand := _iso_brand(h)) is not None and brand not in ISO_STILL_BRANDS),
    Medium("WEBM", "WebM", "video/webm", Kind.VIDEO, lambda h: h[:4] == b"\x1a\x45\xdf\xa3"),
)  # fmt: skip

# What Pillow may open (Image.open(formats=...)): every format but the videos. Multi-picture
# JPEGs (MPO) open through the JPEG entry.
PILLOW_FORMATS: tuple[str, ...] = tuple(m.name for m in FORMATS if m.kind is not Kind.VIDEO)
VIDEO_FORMATS = frozenset(m.name for m in FORMATS if m.kind is Kind.VIDEO)
_BY_MIME = {m.mime: m for m in FORMATS}
# Declared types that say nothing about the bytes: a client that did not know, or did not say.
_UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def sniff(head: bytes) -> Medium | None:
    """The format whose signature ``head`` (the first bytes; 16 are enough) starts with."""
    for medium in FORMATS:
        if medium.matches(head):
            return medium
    return None


def declared_media(content_type: str | None) -> bool:
    """Whether a declared ``Content-Type`` may be media: an image or video type (one we decode
    or not: the bytes will tell), or none at all. A document, text, audio or a font is not."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime in _UNDECLARED or mime in _BY_MIME or mime.startswith(("image/", "video/"))


def labels() -> str:
    """The formats as people name them, for messages: "JPEG, PNG, ..., WebM"."""
    return ", ".join(m.label for m in FORMATS if m.name != "MOV")
