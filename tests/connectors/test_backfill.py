"""The backfill source: what it replays, in which order, and where it resumes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modstream.connectors.backfill import (
    Backfill,
    BackfillOptions,
    backfill_folders,
    scorer_file_root,
    url_for_line,
)
from modstream.connectors.base import Emission
from modstream.errors import ConfigError, SourceError


async def _drain(source: Backfill, resume_from: str | None = None) -> list[Emission]:
    async with source:
        return [emission async for emission in source.emissions(resume_from)]


_JPEG = b"\xff\xd8\xff\xe0" + bytes(60)
_PNG = b"\x89PNG\r\n\x1a\n" + bytes(60)
_WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(60)


def _tree(root: Path) -> None:
    files = {
        "b.jpg": _JPEG,
        "a/z.png": _PNG,
        "a.jpg": _JPEG,
        "a/b/c.webp": _WEBP,
        "c/readme.txt": b"plain text",
        "c/d.JPEG": _JPEG,
        "c/3f9a1c0e": _PNG,  # an extensionless upload, as image hosts store them
        "c/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>',
    }
    for relative, body in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


async def test_a_directory_replays_every_image_in_path_order_and_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Image files by their bytes (an extensionless one included), in order of their path
    components; resume skips what was acknowledged; skipped files are logged with reasons."""
    _tree(tmp_path)
    source = Backfill(tmp_path, BackfillOptions(progress=False))
    with caplog.at_level(logging.WARNING, logger="modstream.connector"):
        emissions = await _drain(source)
    positions = [emission.position for emission in emissions]
    assert positions == ["a/b/c.webp", "a/z.png", "a.jpg", "b.jpg", "c/3f9a1c0e", "c/d.JPEG"]
    urls = [emission.events[0].url for emission in emissions]
    assert urls[0] == (tmp_path / "a" / "b" / "c.webp").as_uri()
    assert source.statistics().events == 6
    (line,) = [record.getMessage() for record in caplog.records]
    assert "6 images to publish, 2 files skipped (not images)" in line
    assert "c/logo.svg (an SVG drawing: only raster images are scored)" in line
    assert "c/readme.txt (text, not an image)" in line
    resumed = await _drain(Backfill(tmp_path, BackfillOptions(progress=False)), "a.jpg")
    assert [emission.position for emission in resumed] == ["b.jpg", "c/3f9a1c0e", "c/d.JPEG"]


async def test_a_url_list_keeps_every_scheme_and_resumes_by_line(tmp_path: Path) -> None:
    """A line with a scheme is a URL as written; other lines are paths; # and blanks skipped."""
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "# exported from the host\nHTTP://Example.com/a.jpg\n\ngopher://x/y\nlocal/b.png\n"
    )
    emissions = await _drain(Backfill(listing, BackfillOptions(progress=False)))
    assert [(e.position, e.events[0].url) for e in emissions] == [
        ("2", "HTTP://Example.com/a.jpg"),
        ("4", "gopher://x/y"),
        ("5", (tmp_path / "local" / "b.png").as_uri()),
    ]
    assert emissions[0].events[0].meta == {"line": 2}
    # The id replays deduplicate on: the URL's sha256 (first 32 hex digits), as written.
    assert [e.events[0].id for e in emissions[:2]] == [
        "22f7f04c4afe33073c78a8480f933ded",
        "9732bd8dac1730abe33653fde1604551",
    ]
    resumed = await _drain(Backfill(listing, BackfillOptions(progress=False)), "4")
    assert [emission.position for emission in resumed] == ["5"]


def test_url_list_lines() -> None:
    """Schemes in any case are URLs; a Windows drive letter is not a scheme."""
    folder = Path("/srv/list")
    assert url_for_line("  https://h/x.jpg \n", folder) == "https://h/x.jpg"
    assert url_for_line("file:///srv/x.jpg", folder) == "file:///srv/x.jpg"
    assert url_for_line("C:/images/x.jpg", folder) == (folder / "C:/images/x.jpg").as_uri()
    assert url_for_line("   ", folder) is None


async def test_a_missing_path_fails_the_source_at_start(tmp_path: Path) -> None:
    """A backfill of nothing is an error the user sees at once, not an empty success."""
    with pytest.raises(SourceError, match="does not exist"):
        await _drain(Backfill(tmp_path / "nope", BackfillOptions(progress=False)))


def test_a_folder_backfill_lets_the_scorer_read_exactly_that_folder(tmp_path: Path) -> None:
    """With the scorer in the process and no flag, the root is the folder itself; a given root
    must contain it; a connector alone leaves the scorer's root to the scorer's own flags."""
    images = tmp_path / "imgs"
    images.mkdir()
    assert scorer_file_root([images], None, scorer_in_process=True) == images.resolve()
    assert scorer_file_root([images], tmp_path, scorer_in_process=True) == tmp_path
    assert scorer_file_root([images], None, scorer_in_process=False) is None
    assert scorer_file_root([], None, scorer_in_process=True) is None


def test_a_backfill_the_scorer_could_not_read_refuses_to_start(tmp_path: Path) -> None:
    """A root that does not contain the folder, or two folders without a root: a ConfigError
    saying what to add."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(ConfigError, match=r"outside --allow-file-root .*drop --allow-file-root"):
        scorer_file_root([tmp_path / "a"], tmp_path / "b", scorer_in_process=True)
    with pytest.raises(ConfigError, match=r"several backfill folders .*add --allow-file-root DIR"):
        scorer_file_root([tmp_path / "a", tmp_path / "b"], None, scorer_in_process=True)
    assert backfill_folders([str(tmp_path / "a"), str(tmp_path / "list.txt")]) == [tmp_path / "a"]
