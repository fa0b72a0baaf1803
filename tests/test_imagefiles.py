"""Image files known by their bytes: signatures, reasons for the rest, the walk's order."""

from __future__ import annotations

from pathlib import Path

import imagegen
import pytest

from modstream.imagefiles import Skipped, image_format, non_image_reason, walk_images


@pytest.mark.parametrize("name", sorted(imagegen.SUPPORTED))
def test_each_decoded_format_is_known_by_its_signature(name: str) -> None:
    """The first bytes of every supported sample name the format Pillow reports for it."""
    sample = imagegen.SUPPORTED[name]()
    assert image_format(sample.data[:512]) == sample.format


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (imagegen.svg_document(), "an SVG drawing: only raster images are scored"),
        (imagegen.html_page(), "an HTML page, not an image"),
        (b"", "an empty file"),
        (b"just some words", "text, not an image"),
    ],
)
def test_a_file_that_is_not_an_image_has_a_reason(head: bytes, reason: str) -> None:
    """SVG, HTML, empty and text files are no image format, each with its own reason."""
    assert image_format(head[:512]) is None
    assert non_image_reason(head[:512]) == reason


def test_the_walk_finds_images_by_bytes_and_reports_the_rest(tmp_path: Path) -> None:
    """An extensionless PNG is found, a .jpg of garbage is skipped with a reason, in name order."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "9f86d081884c7d65").write_bytes(imagegen.png_rgb().data)
    (tmp_path / "a.jpg").write_bytes(imagegen.garbage())
    (tmp_path / "c.png").write_bytes(imagegen.png_rgb().data)
    skipped: list[Skipped] = []
    found = list(walk_images(tmp_path, skipped.append))
    assert found == [tmp_path / "b" / "9f86d081884c7d65", tmp_path / "c.png"]
    reason = "not an image in a supported format (JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF, MP4, WebM)"
    assert [(item.path.name, item.reason) for item in skipped] == [("a.jpg", reason)]


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "MP4"),
        (b"\x00\x00\x00\x20ftypmp42\x00\x00\x00\x00", "MP4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", "MOV"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "WEBM"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", None),
    ],
)
def test_videos_are_known_by_their_container_and_heic_is_not_a_video(
    head: bytes, found: str | None
) -> None:
    """ISO media files are videos unless their brand is a still image format (HEIC, AVIF);
    Matroska's EBML magic is a WebM."""
    assert image_format(head) == found
    if found is None:
        assert non_image_reason(head) == "an image format that is not decoded (HEIC, HEIF)"
