"""What a user reads on stderr: no ERROR line while all is well, and a broker outage told in a
few modstream lines instead of a flood of the Kafka client's."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from .support import unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")

_WINDOW = re.compile(r" results in (\d+\.\d) s")
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (\S+) (.*)$")


@dataclass(frozen=True, slots=True)
class LogLine:
    at: datetime
    level: str
    logger: str
    message: str


def _log_lines(text: str) -> list[LogLine]:
    """The lines of the log format (``time LEVEL logger message``); tracebacks and the live view
    are not log lines."""
    lines = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is not None:
            at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
            lines.append(LogLine(at, match[2], match[3], match[4]))
    return lines


def _errors(text: str) -> list[str]:
    return [f"{line.logger} {line.message}" for line in _log_lines(text) if line.level == "ERROR"]


def _run_command(servers: str, prefix: str, cache_dir: Path, urls: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "modstream", "run", "--role", "all", "--bootstrap-servers", servers,
        "--topic-prefix", prefix, "--group-id", unique_group("logs"), "--metrics-port", "0",
        "--allow-cidr", "127.0.0.0/8", "--cache-dir", str(cache_dir),
        "--session-timeout-ms", "6000", "--fetch-max-wait-ms", "50", "--source", "synthetic",
        "--source-option", f"urls={','.join(urls)}", "--source-option", "rate=10",
        "--source-option", "events=100000",
    ]  # fmt: skip


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


async def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(process.wait, 60)
    assert code == 0, _read(log)[-3000:]


async def test_a_healthy_demo_prints_no_error_line(ov_cache_dir: Path) -> None:
    """``modstream demo --verbose`` on its embedded broker (which grants no idempotent producers)
    logs INFO lines and no line at ERROR: probing the broker's capabilities alarms nobody."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream", "demo", "--events", "40", "--rate", "40", "--verbose",
         "--cache-dir", str(ov_cache_dir)],
        capture_output=True, timeout=180,
    )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr[-3000:]
    lines = _log_lines(stderr)
    assert any(line.level == "INFO" for line in lines), "--verbose shows the INFO lines"
    assert _errors(stderr) == []
    idempotence = [line for line in lines if "idempotent" in line.message]
    assert len(idempotence) == 1, "the refused idempotence is told once per process"
