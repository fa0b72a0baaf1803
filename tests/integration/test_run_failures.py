"""``modstream run`` with a stage that cannot work exits non-zero within seconds, in one line."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modstream.kafka.broker import EmbeddedBroker, free_loopback_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


async def _run(*arguments: str, timeout_s: float = 60) -> tuple[int, str, float]:
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream", "run", *arguments],
        capture_output=True,
        timeout=timeout_s,
    )
    return done.returncode, done.stderr.decode(), time.monotonic() - started


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


async def test_a_device_that_cannot_compile_stops_the_run_naming_the_devices_present(
    broker: EmbeddedBroker, ov_cache_dir: Path
) -> None:
    """--device NPU on a machine without one: exit 1 soon, one line naming NPU and CPU."""
    code, stderr, seconds = await _run(
        "--bootstrap-servers", broker.bootstrap_servers, "--metrics-port", "0",
        "--topic-prefix", "fail-npu", "--device", "NPU", "--cache-dir", str(ov_cache_dir),
    )  # fmt: skip
    assert code == 1, stderr
    line = _last_line(stderr)
    assert line.startswith("modstream run: device_error: cannot compile open_nsfw for device 'NPU'")
    assert "devices here: CPU" in line
    assert "Traceback" not in stderr
    assert seconds < 30


async def test_a_metrics_port_in_use_is_one_line_naming_the_port_and_the_flag(
    broker: EmbeddedBroker, taken_port: int
) -> None:
    """A second modstream on one host fails with the port and --metrics-port, not a traceback."""
    code, stderr, _ = await _run(
        "--bootstrap-servers", broker.bootstrap_servers, "--metrics-port", str(taken_port),
        "--topic-prefix", "fail-port",
    )  # fmt: skip
    assert code == 1, stderr
    line = _last_line(stderr)
    assert line.startswith("modstream run: port_in_use:")
    assert f":{taken_port}" in line and "--metrics-port" in line
    assert "Traceback" not in stderr


async def test_a_source_that_cannot_start_stops_the_scorer_too(
    broker: EmbeddedBroker, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """A backfill of a missing path fails its stage; the scorer beside it is cancelled; exit 1."""
    code, stderr, seconds = await _run(
        "--bootstrap-servers", broker.bootstrap_servers, "--metrics-port", "0",
        "--topic-prefix", "fail-source", "--cache-dir", str(ov_cache_dir),
        "--state-dir", str(tmp_path), "--source", f"backfill:{tmp_path / 'missing'}",
    )  # fmt: skip
    assert code == 1, stderr
    assert _last_line(stderr).startswith("modstream run: source_error: backfill:")
    assert seconds < 30


async def test_option_mistakes_are_usage_errors_naming_the_valid_options() -> None:
    """An unknown source option exits 2 naming it and the valid ones, before anything starts."""
    code, stderr, _ = await _run(
        "--metrics-port", "0", "--source", "synthetic", "--source-option", "urls=http://h/a",
        "--source-option", "colour=red",
    )  # fmt: skip
    assert code == 2
    valid = "valid: urls, rate, events, resume"
    assert f"unknown option 'colour' for source synthetic; {valid}" in stderr
    code, stderr, _ = await _run(
        "--metrics-port", "0", "--bootstrap-servers", f"127.0.0.1:{free_loopback_port()}",
        "--source", "synthetic", "--webhook-port", "1",
    )  # fmt: skip
    assert code == 2
    assert "--webhook-port is an option of --source webhook" in stderr
