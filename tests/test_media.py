"""The media table: every format named once, known by its bytes, with its MIME type and kind."""

from __future__ import annotations

import io

import imagegen
import mediagen
import pytest
from PIL import Image

from modstream.media import FORMATS, PILLOW_FORMATS, Kind, declared_media, sniff


def _avif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, "AVIF")
    return buffer.getvalue()


def _quicktime() -> bytes:
    """An MP4 whose ftyp box names QuickTime's brand, as a camera's .mov begins."""
    mp4 = mediagen.video("mp4", seconds=0.5)
    return mp4[:8] + b"qt  " + mp4[12:]


def _ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x00\x00mif1heic"


@pytest.mark.parametrize(
    ("data", "name", "mime", "kind"),
    [
        (imagegen.jpeg_baseline().data, "JPEG", "image/jpeg", Kind.STILL),
        (imagegen.png_rgb().data, "PNG", "image/png", Kind.ANIMATION),
        (imagegen.gif_animated().data, "GIF", "image/gif", Kind.ANIMATION),
        (imagegen.webp().data, "WEBP", "image/webp", Kind.ANIMATION),
        (imagegen.bmp().data, "BMP", "image/bmp", Kind.STILL),
        (imagegen.tiff().data, "TIFF", "image/tiff", Kind.STILL),
        (_avif(), "AVIF", "image/avif", Kind.STILL),
        (mediagen.video("mp4", seconds=0.5), "MP4", "video/mp4", Kind.VIDEO),
        (_quicktime(), "MOV", "video/quicktime", Kind.VIDEO),
        (mediagen.video("webm", seconds=0.5), "WEBM", "video/webm", Kind.VIDEO),
    ],
    ids=lambda value: value if isinstance(value, str) and value.isupper() else "",
)
def test_real_files_of_each_format_are_known_by_their_first_bytes(
    data: bytes, name: str, mime: str, kind: Kind
) -> None:
    medium = sniff(data[:16])
    assert medium is not None and (medium.name, medium.mime, medium.kind) == (name, mime, kind)


@pytest.mark.parametrize(
    "data",
    [b"", imagegen.html_page(), imagegen.svg_document(), _ftyp(b"heic"), _ftyp(b"mif1"),
     b"BM", b"GIF88a", b"RIFF\x00\x00\x00\x00WAVE"],
    ids=["empty", "html", "svg", "heic", "heif", "bmp-too-short", "gif-unknown", "riff-wave"],
)  # fmt: skip
def test_other_bytes_are_no_medium(data: bytes) -> None:
    assert sniff(data) is None


def test_every_format_is_named_once_and_pillow_opens_all_but_the_videos() -> None:
    names = [medium.name for medium in FORMATS]
    assert len(names) == len(set(names)) and len({m.mime for m in FORMATS}) == len(FORMATS)
    assert set(PILLOW_FORMATS) == {m.name for m in FORMATS if m.kind is not Kind.VIDEO}
    assert set(PILLOW_FORMATS) <= set(Image.registered_extensions().values())


@pytest.mark.parametrize(
    ("declared", "media"),
    [(None, True), ("", True), ("application/octet-stream", True), ("binary/octet-stream", True),
     ("image/png", True), ("IMAGE/JPEG; q=1", True), ("image/x-icon", True), ("video/ogg", True),
     ("application/pdf", False), ("text/html", False), ("audio/ogg", False),
     ("font/woff2", False)],
)  # fmt: skip
def test_a_declared_type_is_media_unless_it_says_it_is_something_else(
    declared: str | None, media: bool
) -> None:
    assert declared_media(declared) is media
