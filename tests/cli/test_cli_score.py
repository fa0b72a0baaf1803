"""``modstream score`` end to end: the real CLI in a subprocess, files, directories and URLs.

URLs are served by a real aiohttp server on the loopback interface, which the SSRF guard refuses
unless ``--allow-cidr`` lets it through.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagegen
import locations
import pytest
import pytest_asyncio
from aiohttp import web
from clirun import CliRun, modstream

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPO = locations.REPO
LADDER = REPO / "tests" / "fixtures" / "ladder"
REFERENCE: dict[str, float] = json.loads((LADDER / "reference.json").read_text())
PICKED = ("syn_11_5.png", "syn_13_3.png", "syn_14_0.png")  # high, middle and low scores
SERVED = "syn_12_4.png"
MODEL_PREFIX = "open_nsfw@864bb37b"
CLI_TIMEOUT_S = 90.0
# The CLI's default preprocessing is "fast"; on 512x512 PNGs it equals "exact".
SCORE_TOLERANCE = 2e-3


@dataclass(slots=True)
class ImageServer:
    url: str
    requests: list[str] = field(default_factory=list)


async def run_score(*args: str | Path, cache_dir: Path) -> CliRun:
    """Run ``python -m modstream score --json --no-progress --cache-dir ... ARGS``."""
    return await modstream("score", "--json", "--no-progress", "--cache-dir", cache_dir, *args,
                           timeout_s=CLI_TIMEOUT_S)  # fmt: skip


def assert_scored_line(line: dict[str, Any], label: str, reference: float) -> None:
    assert "error" not in line, line
    assert line["input"] == label
    assert isinstance(line["nsfw"], float) and 0.0 <= line["nsfw"] <= 1.0
    assert line["nsfw"] == pytest.approx(reference, abs=SCORE_TOLERANCE)
    # the default policy is "balanced": flag at 0.5, no review band
    assert line["decision"] == ("flagged" if line["nsfw"] >= 0.5 else "safe")
    assert line["model"].startswith(MODEL_PREFIX)
    timings = line["timings"]
    assert {"decode", "queue", "infer", "total", "batch_size"} <= timings.keys()
    assert all(value >= 0 for value in timings.values())
    assert timings["total"] > 0


@pytest.fixture(scope="module")
def cli_cache_dir(ov_cache_dir: Path) -> Path:
    """The CLI processes share the test run's OpenVINO cache, kept out of the home directory."""
    return ov_cache_dir


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def image_server() -> AsyncIterator[ImageServer]:
    """A real HTTP server on 127.0.0.1 (free port) serving one ladder PNG at /image.png."""
    body = (LADDER / SERVED).read_bytes()
    server = ImageServer(url="")

    released = asyncio.Event()

    async def image(request: web.Request) -> web.Response:
        server.requests.append(request.path)
        return web.Response(body=body, content_type="image/png")

    async def hangs_once(request: web.Request) -> web.Response:
        server.requests.append(request.path)
        if server.requests.count(request.path) == 1:
            await released.wait()  # the first request never gets its response
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_get("/image.png", image)
    app.router.add_get("/hangs-once.png", hangs_once)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        server.url = f"http://{host}:{port}/image.png"
        yield server
    finally:
        released.set()
        await runner.cleanup()


async def test_directory_with_a_bad_file_gives_one_line_each_and_exit_1(
    tmp_path: Path, cli_cache_dir: Path
) -> None:
    """A directory of PNGs plus a truncated x.png: one JSON line per image, in order; exit 1."""
    for name in PICKED:
        shutil.copy(LADDER / name, tmp_path / name)
    (tmp_path / "x.png").write_bytes(imagegen.truncated_png())

    run = await run_score(tmp_path, cache_dir=cli_cache_dir)

    assert run.returncode == 1, run.stderr
    lines = run.lines()
    expected_labels = [str(tmp_path / name) for name in (*sorted(PICKED), "x.png")]
    assert [line["input"] for line in lines] == expected_labels
    for line, name in zip(lines[:-1], sorted(PICKED), strict=True):
        assert_scored_line(line, str(tmp_path / name), REFERENCE[name])
    bad = lines[-1]
    assert set(bad) == {"input", "error"}
    assert bad["error"]["kind"] == "truncated"
    assert bad["error"]["message"]


async def test_a_table_run_prints_only_modstreams_lines_and_an_english_summary(
    tmp_path: Path, cli_cache_dir: Path
) -> None:
    """Without --json: a PNG just over Pillow's pixel limit is one decompression_bomb line with no
    Pillow warning before it, and the summary reads "2 inputs ...: 1 safe, 1 error" (and "1
    input" for one)."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(imagegen.png_bomb(10_000, 9_000))  # 90 Mpx: Pillow warns, it does not refuse
    shutil.copy(LADDER / PICKED[2], tmp_path / "low.png")
    base = [sys.executable, "-m", "modstream", "score", "--no-progress",
            "--cache-dir", str(cli_cache_dir)]  # fmt: skip

    def score(*paths: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *map(str, paths)], capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S, cwd=REPO)  # fmt: skip

    both = await asyncio.to_thread(score, bomb, tmp_path / "low.png")
    assert both.returncode == 1, both.stderr
    assert "Warning" not in both.stderr and "PIL" not in both.stderr, both.stderr
    assert "decompression_bomb" in both.stdout.splitlines()[0]
    summary = both.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"2 inputs in \d+\.\d\d s \(\d+\.\d/s\): 1 safe, 1 error", summary)
    one = await asyncio.to_thread(score, bomb)
    assert re.fullmatch(r"1 input in .*: 1 error", one.stderr.strip().splitlines()[-1])


async def test_a_directory_is_read_by_the_bytes_of_its_files(
    tmp_path: Path, cli_cache_dir: Path
) -> None:
    """Extensionless hash-named images are scored; an SVG, a text file and garbage named .jpg
    are not scored but each named on stderr with its reason; the run exits 0."""
    shutil.copy(LADDER / PICKED[0], tmp_path / "5d41402abc4b2a76")
    shutil.copy(LADDER / PICKED[1], tmp_path / "7d793037a0760186")
    (tmp_path / "drawing.svg").write_bytes(imagegen.svg_document())
    (tmp_path / "notes.txt").write_text("a note")
    (tmp_path / "x.jpg").write_bytes(imagegen.garbage())

    run = await run_score(tmp_path, cache_dir=cli_cache_dir)

    assert run.returncode == 0, run.stderr
    lines = run.lines()
    assert [Path(line["input"]).name for line in lines] == ["5d41402abc4b2a76", "7d793037a0760186"]
    assert_scored_line(lines[0], str(tmp_path / "5d41402abc4b2a76"), REFERENCE[PICKED[0]])
    skipped = [line for line in run.stderr.splitlines() if "skipped" in line]
    assert skipped == [
        f"modstream score: skipped {tmp_path / 'drawing.svg'}: an SVG drawing: only raster "
        "images are scored",
        f"modstream score: skipped {tmp_path / 'notes.txt'}: text, not an image",
        f"modstream score: skipped {tmp_path / 'x.jpg'}: not an image in a supported format "
        "(JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF, MP4, WebM)",
    ]


async def test_all_good_inputs_exit_0(tmp_path: Path, cli_cache_dir: Path) -> None:
    """Files given one by one, all valid: every line has a score and the exit code is 0."""
    paths = []
    for name in PICKED[:2]:
        shutil.copy(LADDER / name, tmp_path / name)
        paths.append(tmp_path / name)

    run = await run_score(*paths, cache_dir=cli_cache_dir)

    assert run.returncode == 0, run.stderr
    lines = run.lines()
    assert len(lines) == len(paths)
    for line, path in zip(lines, paths, strict=True):
        assert_scored_line(line, str(path), REFERENCE[path.name])


@pytest.mark.parametrize(
    "case",
    ["batch_size_zero", "no_inputs", "empty_directory", "no_images", "bad_cidr"],
)
async def test_usage_errors_exit_2_without_output(
    case: str, tmp_path: Path, cli_cache_dir: Path
) -> None:
    """Bad options, no inputs, or no image files exit 2 and print nothing on stdout."""
    image = LADDER / PICKED[0]
    (tmp_path / "empty").mkdir()
    (tmp_path / "svgs").mkdir()
    (tmp_path / "svgs" / "logo.svg").write_bytes(imagegen.svg_document())
    args: dict[str, list[str | Path]] = {
        "batch_size_zero": ["--batch-size", "0", image],
        "no_inputs": [],
        "empty_directory": [tmp_path / "empty"],
        "no_images": [tmp_path / "svgs"],
        "bad_cidr": ["--allow-cidr", "not-a-network", image],
    }
    run = await run_score(*args[case], cache_dir=cli_cache_dir)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stdout == ""
    assert "modstream score" in run.stderr
    if case == "no_images":
        assert "no image files found in the given inputs (1 file skipped)" in run.stderr


async def test_loopback_url_scores_when_its_range_is_allowed(
    image_server: ImageServer, cli_cache_dir: Path
) -> None:
    """With --allow-cidr 127.0.0.0/8 a URL on a loopback server is fetched and scored."""
    before = len(image_server.requests)
    run = await run_score("--allow-cidr", "127.0.0.0/8", image_server.url, cache_dir=cli_cache_dir)
    assert run.returncode == 0, run.stderr
    (line,) = run.lines()
    assert_scored_line(line, image_server.url, REFERENCE[SERVED])
    assert line["timings"]["fetch"] >= 0
    assert image_server.requests[before:] == ["/image.png"]


async def test_a_url_whose_first_request_hangs_is_scored_after_a_retry(
    image_server: ImageServer, cli_cache_dir: Path
) -> None:
    """--fetch-timeout is the whole budget of a URL: a first request with no response is asked
    again after a third of it, and the line says the fetch took two attempts."""
    url = image_server.url.replace("/image.png", "/hangs-once.png")
    run = await run_score(
        "--allow-cidr", "127.0.0.0/8", "--fetch-timeout", "3", url, cache_dir=cli_cache_dir
    )
    assert run.returncode == 0, run.stderr
    (line,) = run.lines()
    assert_scored_line(line, url, REFERENCE[SERVED])
    assert line["fetch_attempts"] == 2
    assert image_server.requests.count("/hangs-once.png") == 2


async def test_loopback_url_is_blocked_by_default(
    image_server: ImageServer, cli_cache_dir: Path
) -> None:
    """Without --allow-cidr a loopback URL is refused as blocked_address before any request, and
    the message says which flag lets it through."""
    before = len(image_server.requests)
    run = await run_score(image_server.url, cache_dir=cli_cache_dir)
    assert run.returncode == 1, run.stderr
    (line,) = run.lines()
    assert line["input"] == image_server.url
    assert "nsfw" not in line
    assert line["error"]["kind"] == "blocked_address"
    assert "127.0.0.1" in line["error"]["message"]
    assert line["error"]["message"].endswith(
        "start with --allow-cidr 127.0.0.1/32 (or a wider range)"
    )
    assert image_server.requests[before:] == [], "the guard must refuse before connecting"


async def test_confirm_decisions_keeps_every_decision_and_says_how_each_score_was_made(
    tmp_path: Path, cli_cache_dir: Path
) -> None:
    """``--confirm decisions`` on the ladder with a review band (0.3 to 0.8): every decision is
    the reference's, a score left at bf16 is far (> 0.05) from both thresholds, and each line's
    precision and preprocessing say which pass made it (bf16 on a CPU that runs it)."""
    for name in REFERENCE:
        shutil.copy(LADDER / name, tmp_path / name)
    run = await run_score(
        "--confirm", "decisions", "--policy", "flag=0.8,review=0.3", tmp_path,
        cache_dir=cli_cache_dir,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.lines()
    assert len(lines) == len(REFERENCE)

    def decide(score: float) -> str:
        return "flagged" if score >= 0.8 else "review" if score >= 0.3 else "safe"

    for line in lines:
        reference = REFERENCE[Path(line["input"]).name]
        assert line["decision"] == decide(reference), (line["input"], line["nsfw"], reference)
        if line["precision"] == "bf16" and line["preprocessing"] == "exact":
            assert min(abs(line["nsfw"] - t) for t in (0.3, 0.8)) > 0.05, line
