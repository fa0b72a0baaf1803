"""Animations and videos through ``modstream score``: the worst frame decides, and says which.

Each file holds one explicit picture (reference 0.98) among safe ones (0.02): scored at that
frame's level, with ``frames.worst_index`` / ``worst_offset_s`` pointing at it; hostile media
get their kinds and the run goes on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import locations
import mediagen

HOT_REFERENCE = json.loads((locations.LADDER / "reference.json").read_text())["syn_11_5.png"]
# Pillow's GIF palette and the video encoders move the explicit frame's score a little.
MEDIA_TOLERANCE = 0.03


def _score(*args: str | Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "modstream", "score", "--json", "--no-progress", *map(str, args)],
        capture_output=True, text=True, cwd=locations.REPO, timeout=180,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_the_explicit_frame_of_each_animation_and_video_decides(
    tmp_path: Path, ov_cache_dir: Path
) -> None:
    """GIF, WebP, APNG, MP4 and WebM: the score is the explicit frame's, the record names it,
    and a still image still has no frames."""
    (tmp_path / "a.gif").write_bytes(mediagen.animation("GIF"))
    (tmp_path / "a.webp").write_bytes(mediagen.animation("WEBP"))
    (tmp_path / "a.png").write_bytes(mediagen.animation("PNG"))
    (tmp_path / "v.mp4").write_bytes(mediagen.video("mp4"))
    (tmp_path / "v.webm").write_bytes(mediagen.video("webm"))
    (tmp_path / "still.png").write_bytes((locations.LADDER / "syn_14_0.png").read_bytes())
    lines = {Path(str(line["input"])).name: line
             for line in _score("--cache-dir", ov_cache_dir, tmp_path)}  # fmt: skip
    for name in ("a.gif", "a.webp", "a.png"):
        line = lines[name]
        assert abs(float(line["nsfw"]) - HOT_REFERENCE) <= MEDIA_TOLERANCE, line  # type: ignore[arg-type]
        assert line["frames"]["worst_index"] == 4 and line["frames"]["scored"] == 9  # type: ignore[index]
        assert line["decision"] == "flagged"
    for name in ("v.mp4", "v.webm"):
        line = lines[name]
        assert abs(float(line["nsfw"]) - HOT_REFERENCE) <= MEDIA_TOLERANCE, line  # type: ignore[arg-type]
        frames = line["frames"]
        assert 2.0 <= frames["worst_offset_s"] < 2.5 and frames["total"] == 40, frames  # type: ignore[index]
        assert max(frames["scores"]) == line["nsfw"]  # type: ignore[index]
    assert "frames" not in lines["still.png"]


def test_hostile_media_get_their_kinds(tmp_path: Path, ov_cache_dir: Path) -> None:
    """A video above the duration cap, a truncated MP4, an MP4 under a WebM header and an
    animation with too many frames: each its stable kind, one line each, the others scored."""
    clip = mediagen.video("mp4")
    (tmp_path / "long.mp4").write_bytes(clip)
    (tmp_path / "cut.mp4").write_bytes(clip[: len(clip) // 2])
    (tmp_path / "mixed.webm").write_bytes(b"\x1a\x45\xdf\xa3" + clip[4:])
    (tmp_path / "ok.gif").write_bytes(mediagen.animation("GIF", frames=3, hot_at=1))
    scored = _score("--cache-dir", ov_cache_dir, "--max-video-s", "1", tmp_path)
    lines = {Path(str(line["input"])).name: line for line in scored}
    kinds = {name: line["error"]["kind"] for name, line in lines.items() if "error" in line}  # type: ignore[index]
    assert kinds == {"long.mp4": "too_long", "cut.mp4": "truncated", "mixed.webm": "truncated"}
    assert lines["ok.gif"]["frames"]["worst_index"] == 1  # type: ignore[index]
