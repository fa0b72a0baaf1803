"""Bank files: read at start-up (a bad one stops it), then reloaded when they change.

:func:`load_bank_files` reads and indexes every file bank before the first image is matched;
an :class:`~modstream.errors.InvalidBank` stops start-up with the file and line. Afterwards
:class:`BankFileWatch` looks at each file's (inode, size, modification time) every
``interval_s`` and, when it changed, reads and indexes it on a thread and swaps it in. A reload
that fails (a bad line, the file gone mid-write or deleted) logs an error and leaves the last good
bank in force; the error is logged once per state of the file, not every poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from modstream.errors import InvalidBank
from modstream.pipeline.match.banks import BankSettings, read_bank
from modstream.pipeline.match.matcher import BankPart, LoadedBank, Matcher

__all__ = ["BankFileWatch", "FileState", "load_bank_files"]

log = logging.getLogger("modstream.banks")


@dataclass(frozen=True, slots=True)
class FileState:
    """What tells a changed file: a new inode (replaced), size or modification time."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileState | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return cls(stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _load(path: Path) -> LoadedBank:
    return LoadedBank.build(read_bank(path))


async def load_bank_files(matcher: Matcher) -> dict[str, FileState | None]:
    """Read and index every file bank of ``matcher``; what each file looked like when read."""
    states: dict[str, FileState | None] = {}
    for bank in matcher.banks:
        if bank.path is None:
            continue
        states[bank.name] = FileState.of(bank.path)
        loaded = await asyncio.to_thread(_load, bank.path)
        if not len(loaded.entries):
            log.warning("hash bank %s (%s) is empty: it matches nothing", bank.name, bank.path)
        matcher.install(bank.name, BankPart.FILE, loaded)
        log.info("hash bank %s: %s from %s", bank.name, loaded.entries.describe(), bank.path)
    return states


@dataclass(slots=True)
class BankFileWatch:
    """Reloads changed bank files for as long as :meth:`run` runs."""

    matcher: Matcher
    states: dict[str, FileState | None]
    interval_s: float = 2.0
    reloads: int = 0
    failures: int = 0
    _reported: dict[str, FileState | None] = field(default_factory=dict)

    async def run(self) -> None:
        banks = [bank for bank in self.matcher.banks if bank.path is not None]
        if not banks:
            return
        while True:
            await asyncio.sleep(self.interval_s)
            for bank in banks:
                await self.check(bank)

    async def check(self, bank: BankSettings) -> None:
        """Reload ``bank`` if its file changed since it was last read."""
        assert bank.path is not None
        state = FileState.of(bank.path)
        if state == self.states.get(bank.name):
            return
        if state is None:
            self._report_once(bank, state, f"{bank.path}: the bank file is gone")
            return
        try:
            loaded = await asyncio.to_thread(_load, bank.path)
        except InvalidBank as exc:
            self.failures += 1
            self._report_once(bank, state, str(exc))
            return
        self.matcher.install(bank.name, BankPart.FILE, loaded)
        self.states[bank.name] = state
        self._reported.pop(bank.name, None)
        self.reloads += 1
        log.info("hash bank %s reloaded: %s", bank.name, loaded.entries.describe())

    def _report_once(self, bank: BankSettings, state: FileState | None, message: str) -> None:
        if bank.name in self._reported and self._reported[bank.name] == state:
            return
        self._reported[bank.name] = state
        log.error("ERROR: %s; the last good copy of bank %s stays in force", message, bank.name)
