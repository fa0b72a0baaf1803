"""Bank files reloaded when they change; a bad reload or a vanished file keeps the last bank."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from modstream.errors import InvalidBank
from modstream.models.pdq import PdqHash
from modstream.pipeline.match.banks import BankSettings
from modstream.pipeline.match.files import BankFileWatch, load_bank_files
from modstream.pipeline.match.matcher import Matcher

A = bytes.fromhex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22")
B = bytes(range(32))


def _write(path: Path, text: str, tick: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(tick * 10**9, tick * 10**9))  # a change the state sees, whatever the clock


def _id_of(matcher: Matcher, bits: bytes) -> str | None:
    found = matcher.lookup(PdqHash(bits=bits, quality=100))
    return None if found is None else found.id


async def test_a_changed_file_is_reloaded_and_a_broken_one_keeps_the_last_good_bank(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An edit applies on the next check; a malformed edit and a deleted file are logged once
    each and leave the last good bank matching; a fixed file applies again."""
    path = tmp_path / "known.txt"
    _write(path, f"{A.hex()} first\n", 1)
    bank = BankSettings(name="known", path=path)
    matcher = Matcher([bank])
    watch = BankFileWatch(matcher, await load_bank_files(matcher))
    assert _id_of(matcher, A) == "first"

    _write(path, f"{A.hex()} first\n{B.hex()} second\n", 2)
    await watch.check(bank)
    assert (_id_of(matcher, B), watch.reloads) == ("second", 1)

    caplog.set_level(logging.ERROR, "modstream.banks")
    _write(path, f"{A.hex()} first\nnot-a-hash\n", 3)
    await watch.check(bank)
    await watch.check(bank)
    assert _id_of(matcher, B) == "second"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "line 2" in errors[0] and "stays in force" in errors[0]

    path.unlink()
    await watch.check(bank)
    await watch.check(bank)
    assert _id_of(matcher, B) == "second"
    assert sum("is gone" in r.getMessage() for r in caplog.records) == 1

    _write(path, f"{B.hex()} again\n", 4)
    await watch.check(bank)
    assert (_id_of(matcher, A), _id_of(matcher, B), watch.reloads) == (None, "again", 2)


async def test_a_malformed_bank_stops_start_up(tmp_path: Path) -> None:
    """At start-up there is no last good bank: a bad file is an error naming its line."""
    path = tmp_path / "known.txt"
    path.write_text(f"{A.hex()}\n{A.hex()[:10]}\n")
    with pytest.raises(InvalidBank, match=r"known\.txt line 2"):
        await load_bank_files(Matcher([BankSettings(name="known", path=path)]))
