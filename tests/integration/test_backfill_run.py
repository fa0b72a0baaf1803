"""A folder backfill as a new user runs it: ``modstream run --source backfill:DIR``, nothing else.

The folder holds extensionless, hash-named images (as image hosts store them) and an SVG. Every
image is scored with no further flag; a second run against a new embedded broker scores them
again (the checkpoint belongs to the first broker); on one cluster a second run resumes and
scores nothing, and ``--source-option restart=true`` scores everything again.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import imagegen
import locations
import pytest
from children import reap, terminate
from polling import until

from modstream.kafka.broker import EmbeddedBroker
from modstream.pipeline.stream.topics import Topics

from .support import Output, OutputReader, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")
LADDER = locations.REPO / "tests" / "fixtures" / "ladder"
IMAGES = 5
EMBEDDED = re.compile(r"embedded DEVELOPMENT broker.*? on (127\.0\.0\.1:\d+)")


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    """Five ladder PNGs under extensionless sha256 names, and a logo.svg."""
    root = tmp_path / "imgs"
    (root / "ab").mkdir(parents=True)
    for source in sorted(LADDER.glob("*.png"))[:IMAGES]:
        body = source.read_bytes()
        (root / "ab" / hashlib.sha256(body).hexdigest()[:16]).write_bytes(body)
    (root / "logo.svg").write_bytes(imagegen.svg_document())
    return root


def _command(cache_dir: Path, state: Path, uploads: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "modstream", "run", "--source", f"backfill:{uploads}",
        "--source-option", "progress=false", "--state-dir", str(state), "--metrics-port", "0",
        "--cache-dir", str(cache_dir), *extra,
    ]  # fmt: skip


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)


def _text(log: Path) -> str:
    return log.read_text()


def _real(path: Path) -> str:
    return str(path.resolve())


def _alive(process: subprocess.Popen[bytes], log: Path) -> None:
    assert process.poll() is None, f"modstream run exited: {_text(log)[-3000:]}"


async def _wait_for(condition: Callable[[], object], what: str, process: subprocess.Popen[bytes],
                    log: Path, timeout_s: float = 90.0) -> object:  # fmt: skip
    return await until(condition, what, timeout_s=timeout_s, alive=lambda: _alive(process, log))


async def _run_until_scored(
    command: list[str], log: Path, count: int, *, servers: str | None, prefix: str = "images"
) -> tuple[list[Output], str]:
    """Run ``modstream run`` until ``count`` outputs are on the result topics (and its source has
    stopped); SIGTERM it; return the outputs and the log."""
    process = _spawn(command, log)
    try:
        if servers is None:
            found = await _wait_for(lambda: EMBEDDED.search(_text(log)), "embedded broker",
                                    process, log)  # fmt: skip
            assert isinstance(found, re.Match)
            servers = found.group(1)
        await _wait_for(lambda: " stopped: " in _text(log), "end of the backfill", process,
                        log)  # fmt: skip
        async with OutputReader(servers, Topics.with_prefix(prefix).outputs()) as reader:
            await reader.wait_until(
                lambda outputs: len(outputs) >= count,
                timeout_s=90,
                what=f"{count} outputs",
                alive=lambda: _alive(process, log),
            )
            await reader.read_to_end()
            outputs = list(reader.outputs)
        assert await terminate(process) == 0, _text(log)[-3000:]
    finally:
        reap(process)
    return outputs, _text(log)


def _scored(outputs: list[Output]) -> list[str]:
    assert all("error" not in output.record for output in outputs), outputs
    return sorted(Path(str(output.record["url"])).name for output in outputs)


async def test_a_folder_of_extensionless_images_is_scored_again_on_a_new_embedded_broker(
    uploads: Path, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """One command scores every image (no --allow-file-root), names the SVG it skipped; a second
    run on a new embedded broker does not trust the first broker's checkpoint: all scored again."""
    state = tmp_path / "state"
    names = sorted(path.name for path in (uploads / "ab").iterdir())
    command = _command(ov_cache_dir, state, uploads)

    first, log = await _run_until_scored(command, tmp_path / "first.log", IMAGES, servers=None)
    assert _scored(first) == names
    assert "1 file skipped (not images): logo.svg (an SVG drawing" in log
    assert f"stopped: {IMAGES} published" in log

    second, log = await _run_until_scored(command, tmp_path / "second.log", IMAGES, servers=None)
    assert _scored(second) == names
    assert "starts over: the checkpoint at ab/" in log
    assert "a new embedded broker or another cluster" in log
    assert f"stopped: {IMAGES} published" in log


async def test_on_one_cluster_a_backfill_resumes_and_restart_true_starts_over(
    broker: EmbeddedBroker, uploads: Path, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """Same cluster, same state: the second run publishes nothing (its checkpoint matches the
    topic), a third with ``--source-option restart=true`` scores every image again."""
    prefix = f"bfr-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    cluster = [
        "--bootstrap-servers", broker.bootstrap_servers, "--topic-prefix", prefix,
        "--group-id", unique_group("bfr"), "--session-timeout", "2",
        "--fetch-max-wait", "0.02",
    ]  # fmt: skip
    command = _command(ov_cache_dir, state, uploads, *cluster)
    run = _run_until_scored

    first, _log = await run(command, tmp_path / "1.log", IMAGES, servers=broker.bootstrap_servers,
                            prefix=prefix)  # fmt: skip
    assert len(first) == IMAGES
    again, log = await run(command, tmp_path / "2.log", IMAGES, servers=broker.bootstrap_servers,
                           prefix=prefix)  # fmt: skip
    assert len(again) == IMAGES and "resumes after position ab/" in log
    assert "stopped: 0 published" in log
    restarted = [*command, "--source-option", "restart=true"]
    third, log = await run(restarted, tmp_path / "3.log", 2 * IMAGES,
                           servers=broker.bootstrap_servers, prefix=prefix)  # fmt: skip
    assert "starts over: restart=true" in log and f"stopped: {IMAGES} published" in log
    assert _scored(third) == sorted(2 * [path.name for path in (uploads / "ab").iterdir()])


async def test_a_file_root_that_cannot_serve_the_backfill_refuses_to_start(
    uploads: Path, tmp_path: Path
) -> None:
    """--allow-file-root elsewhere: exit 2 with one line saying what to change, nothing started."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    real = _real(uploads)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream", "run", "--source", f"backfill:{uploads}",
         "--allow-file-root", str(elsewhere), "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"modstream run: the backfill folder {real} is outside --allow-file-root "
        f"{elsewhere}, so the scorer could read none of its images: drop --allow-file-root (the "
        "scorer then reads exactly the backfill folder) or give a folder that contains it"
    )


async def test_a_window_where_every_image_failed_is_an_error_line(
    broker: EmbeddedBroker, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """A URL list of file: URLs with no file root: each is an invalid_url error, and the periodic
    line is an ERROR saying every image failed, with the errors by kind and an example."""
    listing = tmp_path / "urls.txt"
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted(LADDER.glob("*.png"))[:3]:
        shutil.copy(source, images / source.name)
    listing.write_text("".join(f"images/{path.name}\n" for path in sorted(images.iterdir())))
    prefix = f"bfe-{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable, "-m", "modstream", "run", "--source", f"backfill:{listing}",
        "--source-option", "progress=false", "--state-dir", str(tmp_path / "state"),
        "--metrics-port", "0", "--cache-dir", str(ov_cache_dir),
        "--bootstrap-servers", broker.bootstrap_servers, "--topic-prefix", prefix,
        "--group-id", unique_group("bfe"), "--session-timeout", "2",
        "--fetch-max-wait", "0.02",
    ]  # fmt: skip
    log = tmp_path / "run.log"
    process = _spawn(command, log)
    try:
        line = await _wait_for(
            lambda: next((text for text in _text(log).splitlines()
                          if "every image of the last" in text), None),
            "error line", process, log, timeout_s=60,
        )  # fmt: skip
        assert await terminate(process) == 0
    finally:
        reap(process)
    assert " ERROR " in str(line), line
    assert "0 results, 3 errors (invalid_url 3)" in str(line)
    assert "e.g. invalid_url: file: URLs are refused" in str(line)
