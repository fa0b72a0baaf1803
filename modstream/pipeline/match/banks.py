"""Hash banks: what a bank is, and reading one from a file. Pure, no I/O but reading the file.

A bank file holds one PDQ hash per line, 64 hexadecimal characters, optionally followed by a
comma or whitespace and an id (what a match reports: a case number, an upload id); ``#`` starts a
comment, blank lines are skipped. A line without an id is reported by its hash. A malformed line
raises :class:`~modstream.errors.InvalidBank` naming the file, the line and what is wrong: bad hex,
a wrong length, an id used twice.

Per bank (:class:`BankSettings`): what a match means (``match``: known content, decision
``matched``; ``safe``: known-good content, whose matches skip the review band), the largest
Hamming distance that matches (31, the PDQ authors' advice), the lowest quality of an image hash
worth looking up (50; featureless images have unstable hashes), and whether the image's 7
rotations and mirrors are tried too. Settings come from ``--hash-bank NAME=PATH`` (defaults) or a
TOML file given to ``--hash-banks``::

    [banks.known]
    path = "known.txt"        # omit for a bank that lives only on the bank topic
    action = "match"          # or "safe"
    distance = 31
    min_quality = 50
    rotations = false
"""

from __future__ import annotations

import enum
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modstream.errors import InvalidBank
from modstream.models.pdq import HASH_BYTES, parse_hex

__all__ = [
    "BankAction",
    "BankEntries",
    "BankSettings",
    "bank_from_flag",
    "banks_from_toml",
    "parse_bank",
    "read_bank",
]

DEFAULT_DISTANCE = 31
DEFAULT_MIN_QUALITY = 50
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SPLIT = re.compile(r"[,\s]+")
_MAX_ID = 256


class BankAction(enum.StrEnum):
    MATCH = "match"
    SAFE = "safe"


@dataclass(frozen=True, kw_only=True, slots=True)
class BankSettings:
    name: str
    path: Path | None = None  # None: the bank lives on the bank topic only
    action: BankAction = BankAction.MATCH
    distance: int = DEFAULT_DISTANCE
    min_quality: int = DEFAULT_MIN_QUALITY
    rotations: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidBank(
                f"bank name {self.name!r}: use letters, digits, '_', '.' or '-' (up to 64)"
            )
        if not 0 <= self.distance <= 128:
            raise InvalidBank(f"bank {self.name}: distance {self.distance} is outside 0..128")
        if not 0 <= self.min_quality <= 100:
            raise InvalidBank(f"bank {self.name}: min_quality {self.min_quality} is outside 0..100")


@dataclass(frozen=True, slots=True)
class BankEntries:
    """A bank's hashes as packed rows (n, 32) uint8, and the id of each row."""

    hashes: npt.NDArray[np.uint8]
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)

    def describe(self) -> str:
        """``1 hash``, ``12 hashes``: for log lines."""
        return f"{len(self)} hash{'' if len(self) == 1 else 'es'}"

    @classmethod
    def of(cls, entries: dict[bytes, str]) -> BankEntries:
        """From hash bytes -> id (the bank topic's state)."""
        if not entries:
            return cls(np.zeros((0, HASH_BYTES), dtype=np.uint8), ())
        joined = b"".join(entries)
        hashes = np.frombuffer(joined, dtype=np.uint8).reshape(-1, HASH_BYTES).copy()
        return cls(hashes, tuple(entries.values()))


def parse_bank(text: str, source: str) -> BankEntries:
    """The entries of a bank file's text; ``source`` names it in errors."""
    rows: list[bytes] = []
    ids: list[str] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = _SPLIT.split(line, maxsplit=1)
        try:
            bits = parse_hex(fields[0])
        except ValueError as exc:
            raise InvalidBank(f"{source} line {number}: {exc} (got {fields[0][:80]!r})") from None
        entry_id = fields[1].strip() if len(fields) > 1 else ""
        if len(entry_id) > _MAX_ID:
            raise InvalidBank(f"{source} line {number}: the id is longer than {_MAX_ID} characters")
        if entry_id:
            if entry_id in seen:
                raise InvalidBank(
                    f"{source} line {number}: id {entry_id!r} is already used on line "
                    f"{seen[entry_id]}"
                )
            seen[entry_id] = number
        rows.append(bits)
        ids.append(entry_id or bits.hex())
    if not rows:
        return BankEntries(np.zeros((0, HASH_BYTES), dtype=np.uint8), ())
    hashes = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, HASH_BYTES).copy()
    return BankEntries(hashes, tuple(ids))


def read_bank(path: Path) -> BankEntries:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidBank(f"{path}: no such bank file") from None
    except UnicodeDecodeError as exc:
        raise InvalidBank(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InvalidBank(f"{path}: cannot be read ({exc.strerror})") from None
    return parse_bank(text, str(path))


def bank_from_flag(value: str) -> BankSettings:
    """``NAME=PATH`` (``--hash-bank``): a file bank with the default settings."""
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise InvalidBank(f"--hash-bank takes NAME=PATH, not {value!r}")
    return BankSettings(name=name, path=Path(path))


def banks_from_toml(path: Path) -> tuple[BankSettings, ...]:
    """The ``[banks.NAME]`` tables of a bank config (``--hash-banks``); relative bank paths are
    read from the config's folder."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidBank(f"{path}: cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidBank(f"{path}: not a TOML file ({exc})") from None
    tables = document.get("banks")
    if not isinstance(tables, dict) or not tables:
        raise InvalidBank(f"{path}: no [banks.NAME] table")
    return tuple(_settings(path, name, table) for name, table in tables.items())


def _settings(config: Path, name: str, table: Any) -> BankSettings:
    where = f"{config} [banks.{name}]"
    if not isinstance(table, dict):
        raise InvalidBank(f"{where}: must be a table")
    unknown = set(table) - {"path", "action", "distance", "min_quality", "rotations"}
    if unknown:
        raise InvalidBank(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    file = table.get("path")
    if file is not None and not isinstance(file, str):
        raise InvalidBank(f"{where}: path must be a string")
    action = table.get("action", "match")
    if action not in tuple(BankAction):
        raise InvalidBank(f"{where}: action must be 'match' or 'safe', not {action!r}")
    numbers = {key: table.get(key, default) for key, default in
               (("distance", DEFAULT_DISTANCE), ("min_quality", DEFAULT_MIN_QUALITY))}  # fmt: skip
    for key, number in numbers.items():
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidBank(f"{where}: {key} must be an integer")
    rotations = table.get("rotations", False)
    if not isinstance(rotations, bool):
        raise InvalidBank(f"{where}: rotations must be true or false")
    return BankSettings(
        name=name,
        path=None if file is None else (config.parent / file),
        action=BankAction(action),
        distance=numbers["distance"],
        min_quality=numbers["min_quality"],
        rotations=rotations,
    )
