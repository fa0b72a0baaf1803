"""Hash banks on the command line, end to end: the real CLI in a subprocess.

``modstream hash`` writes a bank; ``modstream score --hash-bank`` matches copies of its images
and nothing else; a negative bank keeps an image out of review; a malformed bank stops start-up
with the file and the line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import imagegen
import locations
import pytest
from clirun import modstream
from PIL import Image, ImageEnhance

pytestmark = pytest.mark.asyncio(loop_scope="session")

BRIDGE = locations.PDQ / "bridge.jpg"
PUBLISHED = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def _save(image: Image.Image, path: Path, **options: Any) -> Path:
    image.save(path, **options)
    return path


def _copies(folder: Path) -> list[Path]:
    """Resized, re-encoded, brightened and slightly cropped copies of the sample photograph."""
    photo = Image.open(BRIDGE).convert("RGB")
    width, height = photo.size
    folder.mkdir()
    return [
        _save(photo.resize((width // 2, height // 2)), folder / "half.jpg", quality=85),
        _save(photo, folder / "quality-40.jpg", quality=40),
        _save(ImageEnhance.Brightness(photo).enhance(1.15), folder / "brighter.png"),
        _save(photo.crop((16, 10, width - 16, height - 10)), folder / "cropped.jpg", quality=90),
    ]


def _unrelated(folder: Path, count: int = 100) -> list[Path]:
    """Photo-like pictures (gradients, soft blobs, grain), turned four ways, and the ladder."""
    folder.mkdir()
    paths = []
    for seed in range(count - 24):
        picture = Image.fromarray(imagegen.photo_like(400, 300, seed=seed)).rotate(90 * (seed % 4))
        paths.append(_save(picture, folder / f"unrelated-{seed}.jpg", quality=88))
    ladder = sorted(locations.LADDER.glob("*.png"))[:24]
    paths += [_save(Image.open(path), folder / f"ladder-{path.name}") for path in ladder]
    return paths


async def test_hash_prints_a_bank_and_score_matches_copies_and_nothing_else(
    tmp_path: Path, ov_cache_dir: Path
) -> None:
    """The bank made by `modstream hash` holds the reference hash of the photograph; scoring
    its copies and 100 unrelated images with that bank matches every copy (bank, id, distance
    <= 31) and none of the others, and every line carries its PDQ hash and quality."""
    hashed = await modstream("hash", BRIDGE)
    assert hashed.returncode == 0, hashed.stderr
    assert hashed.stdout == f"{PUBLISHED} {BRIDGE}\n"
    bank = tmp_path / "known.txt"
    bank.write_text(hashed.stdout)

    copies, unrelated = _copies(tmp_path / "copies"), _unrelated(tmp_path / "unrelated")
    scored = await modstream(
        "score", "--json", "--no-progress", "--cache-dir", ov_cache_dir,
        "--hash-bank", f"known={bank}", tmp_path / "copies", tmp_path / "unrelated",
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    lines = scored.by_input()
    assert len(lines) == len(copies) + len(unrelated) == 104
    for line in lines.values():
        assert len(line["pdq"]) == 64 and 0 <= line["pdq_quality"] <= 100
    for path in copies:
        line = lines[path.name]
        assert line["decision"] == "matched", path.name
        assert (line["match"]["bank"], line["match"]["id"]) == ("known", str(BRIDGE))
        assert line["match"]["distance"] <= 31
    for path in unrelated:
        assert "match" not in lines[path.name] and lines[path.name]["decision"] != "matched"


async def test_a_negative_bank_keeps_its_images_out_of_review(
    tmp_path: Path, ov_cache_dir: Path
) -> None:
    """With a review band that takes every image, an image in a 'safe' bank is decided safe
    (with the match said), while the same run reviews an image of no bank."""
    other = _save(Image.fromarray(imagegen.photo_like(400, 300, seed=7)), tmp_path / "o.jpg")
    (tmp_path / "art.txt").write_text(f"{PUBLISHED} the-bridge\n")
    (tmp_path / "banks.toml").write_text('[banks.art]\npath = "art.txt"\naction = "safe"\n')
    scored = await modstream(
        "score", "--json", "--no-progress", "--cache-dir", ov_cache_dir,
        "--policy", "flag=0.99,review=0.0", "--hash-banks", tmp_path / "banks.toml", BRIDGE, other,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    lines = scored.by_input()
    assert lines["bridge.jpg"]["decision"] == "safe"
    assert lines["bridge.jpg"]["match"]["action"] == "safe"
    assert lines["o.jpg"]["decision"] == "review"


async def test_a_malformed_bank_stops_start_up_with_its_file_and_line(tmp_path: Path) -> None:
    """A bad line is refused before any image is scored: exit 1, the file and line on stderr."""
    bank = tmp_path / "bad.txt"
    bank.write_text(f"{PUBLISHED} a\nnot-a-hash b\n")
    scored = await modstream("score", "--no-progress", "--hash-bank", f"bad={bank}", BRIDGE)
    assert scored.returncode == 1
    assert f"{bank} line 2: a PDQ hash is 64 hexadecimal characters" in scored.stderr
    assert scored.stdout == ""


async def test_hash_marks_featureless_images_and_failures(tmp_path: Path) -> None:
    """A hash below the quality floor is a comment line (the output stays a valid bank); an
    unreadable input is one too, with exit status 1; --json gives the fields."""
    ladder = locations.LADDER / "syn_11_0.png"
    missing = tmp_path / "missing.jpg"
    result = await modstream("hash", ladder, missing)
    assert result.returncode == 1
    low, failed = result.stdout.splitlines()
    assert low.startswith("# quality ") and low.endswith(str(ladder))
    assert failed == f"# not_found: {missing}"
    as_json = await modstream("hash", "--json", "--rotations", BRIDGE)
    line = json.loads(as_json.stdout)
    assert (line["pdq"], line["pdq_quality"], len(line["pdq_variants"])) == (PUBLISHED, 100, 7)


async def test_no_pdq_leaves_the_hash_out_and_refuses_banks(
    tmp_path: Path, ov_cache_dir: Path
) -> None:
    """--no-pdq scores without hashing (pdq and pdq_quality null); with a bank it is a failed
    start, one line saying why, since no hash could ever match."""
    scored = await modstream("score", "--json", "--no-progress", "--cache-dir", ov_cache_dir,
                             "--no-pdq", BRIDGE)  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    line = scored.by_input()["bridge.jpg"]
    assert (line["pdq"], line["pdq_quality"]) == (None, None)
    bank = tmp_path / "k.txt"
    bank.write_text(f"{PUBLISHED}\n")
    refused = await modstream("score", "--no-progress", "--no-pdq", "--hash-bank", f"k={bank}",
                              BRIDGE)  # fmt: skip
    assert refused.returncode == 1 and "cannot be used with --pdq off" in refused.stderr
