"""The one teardown of the tests' child processes: SIGTERM, a bounded wait, then SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["reap", "running", "spawn", "terminate"]

STOP_WITHIN_S = 40.0  # a graceful stop drains for up to 30 s, then closes its clients


async def terminate(process: subprocess.Popen[bytes], timeout_s: float = STOP_WITHIN_S) -> int:
    """Stop ``process`` as an operator does (SIGTERM) and return its exit code; one that is still
    running after ``timeout_s`` is killed, and that is an AssertionError."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.to_thread(process.wait, timeout_s)
    except subprocess.TimeoutExpired:
        reap(process)
        raise AssertionError(
            f"pid {process.pid} did not exit {timeout_s:g} s after SIGTERM"
        ) from None


def reap(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` if it still runs, and wait for it (a test's ``finally``)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()


def spawn(
    command: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output appended to ``log_path`` and no stdin."""
    with log_path.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=cwd)  # fmt: skip


@contextlib.contextmanager
def running(
    command: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running (:func:`spawn`); on the way out SIGTERM, a wait of up to
    STOP_WITHIN_S, then :func:`reap`."""
    process = spawn(command, log_path, env=env, cwd=cwd)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_WITHIN_S)
        reap(process)
