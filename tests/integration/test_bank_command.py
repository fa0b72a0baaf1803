"""``modstream bank`` against a real broker: add, import, export and remove on the bank topic."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import locations
import pytest

from .conftest import Broker

pytestmark = pytest.mark.asyncio(loop_scope="session")

A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
B = "00" * 31 + "ff"


async def _bank(broker: Broker, *args: str | Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modstream", "bank", *map(str, args),
        "--bootstrap-servers", broker.bootstrap_servers, cwd=locations.REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_bank_entries_are_added_imported_exported_and_removed(
    any_broker: Broker, tmp_path: Path
) -> None:
    """Each change lands on the compacted topic, which export reads back as bank lines; a
    removal takes the entry out; a malformed hash or bank file is a usage error (2)."""
    topic = f"it-banks-{uuid.uuid4().hex[:8]}"
    where = ("--bank-topic", topic)
    assert (await _bank(any_broker, "add", "known", A, "case-1", *where))[0] == 0
    imported = tmp_path / "more.txt"
    imported.write_text(f"# two more\n{B}, upload-9\n{A} case-1-again\n")
    code, _out, err = await _bank(any_broker, "import", "removed", imported, *where)
    assert code == 0 and "2 changes sent" in err
    code, out, _err = await _bank(any_broker, "export", *where)
    assert code == 0
    assert out.splitlines() == [f"known {A} case-1", f"removed {B} upload-9",
                                f"removed {A} case-1-again"]  # fmt: skip
    assert (await _bank(any_broker, "remove", "removed", B, *where))[0] == 0
    code, out, _err = await _bank(any_broker, "export", "removed", *where)
    assert out.splitlines() == [f"removed {A} case-1-again"]
    code, _out, err = await _bank(any_broker, "add", "known", "abc", "x", *where)
    assert code == 2 and "64 hexadecimal characters" in err
    imported.write_text("zz\n")
    code, _out, err = await _bank(any_broker, "import", "removed", imported, *where)
    assert code == 2 and "more.txt line 1" in err
