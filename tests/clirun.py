"""``python -m modstream ARGS`` as a child process, for the tests of the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import locations

__all__ = ["CliRun", "modstream"]


@dataclass(frozen=True, slots=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines of stdout."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def by_input(self) -> dict[str, dict[str, Any]]:
        """The JSON lines by their input's file name."""
        return {Path(line["input"]).name: line for line in self.lines()}


async def modstream(*args: str | Path, timeout_s: float = 120.0) -> CliRun:
    """Run the command from the repository's root; killed when ``timeout_s`` passes."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modstream", *map(str, args), cwd=locations.REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout_s):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return CliRun(process.returncode, stdout.decode(), stderr.decode())
