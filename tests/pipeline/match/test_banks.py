"""Bank files and bank configs: what is read, and every malformed line named with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from modstream.errors import InvalidBank
from modstream.pipeline.match.banks import (
    BankAction,
    BankSettings,
    bank_from_flag,
    banks_from_toml,
    parse_bank,
    read_bank,
)

A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
B = "0" * 63 + "1"


def test_a_bank_file_reads_hashes_ids_comments_and_separators() -> None:
    """Comma or whitespace separates the id; '#' comments and blank lines are skipped; a line
    without an id is reported by its hash; upper-case hex is accepted."""
    text = f"# known content\n\n{A}, case 17\n{B.upper()}\t# no id\n{A}   upload 9\n"
    entries = parse_bank(text, "bank.txt")
    assert entries.ids == ("case 17", B, "upload 9")
    assert entries.hashes.shape == (3, 32)
    assert bytes(entries.hashes[0]).hex() == A


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"{A},x\n{A[:-2]},y\n",
            "bank.txt line 2: a PDQ hash is 64 hexadecimal characters, not 62",
        ),
        (f"{'g' * 64}\n", "bank.txt line 1: a PDQ hash is 64 hexadecimal characters (0-9, a-f)"),
        (f"{A},x\n\n{B} x\n", "bank.txt line 3: id 'x' is already used on line 1"),
        (f"{A} {'i' * 300}\n", "bank.txt line 1: the id is longer than 256 characters"),
    ],
)
def test_a_malformed_line_is_named_with_its_file_and_number(text: str, message: str) -> None:
    """Bad hex, a wrong length, an id used twice, an oversized id: each stops with the place."""
    with pytest.raises(InvalidBank) as raised:
        parse_bank(text, "bank.txt")
    assert str(raised.value).startswith(message)
    assert raised.value.kind == "invalid_bank"


def test_an_empty_bank_is_a_bank_of_nothing(tmp_path: Path) -> None:
    """A file of comments only is valid and holds no hash."""
    path = tmp_path / "empty.txt"
    path.write_text("# nothing yet\n")
    assert len(read_bank(path)) == 0


def test_unreadable_bank_files_are_typed_errors(tmp_path: Path) -> None:
    """A missing file and one that is not text are refused with the path."""
    with pytest.raises(InvalidBank, match="no such bank file"):
        read_bank(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidBank, match="not UTF-8"):
        read_bank(binary)


def test_the_flag_and_the_toml_config_give_bank_settings(tmp_path: Path) -> None:
    """NAME=PATH takes the defaults (match, 31, 50, no rotations); a TOML table sets each,
    relative paths from the config's folder, a table without a path is a topic-only bank."""
    assert bank_from_flag("known=/data/k.txt") == BankSettings(
        name="known", path=Path("/data/k.txt")
    )
    config = tmp_path / "banks.toml"
    config.write_text(
        '[banks.known]\npath = "k.txt"\ndistance = 20\nrotations = true\n'
        '[banks.art]\npath = "art.txt"\naction = "safe"\nmin_quality = 70\n'
        "[banks.removed]\n"
    )
    known, art, removed = banks_from_toml(config)
    assert known == BankSettings(name="known", path=tmp_path / "k.txt", distance=20, rotations=True)
    assert art.action is BankAction.SAFE and art.min_quality == 70 and art.distance == 31
    assert removed.path is None and removed.action is BankAction.MATCH


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[banks.k]\naction = "block"\n', "action must be 'match' or 'safe'"),
        ("[banks.k]\ndistance = 300\n", "distance 300 is outside 0..128"),
        ("[banks.k]\ndistance = true\n", "distance must be an integer"),
        ("[banks.k]\ncolour = 1\n", "unknown keys colour"),
        ("[other]\n", "no [banks.NAME] table"),
        ("[banks.k\n", "not a TOML file"),
        ('[banks."a b"]\n', "use letters, digits"),
    ],
)
def test_a_bad_bank_config_is_refused_with_what_is_wrong(
    tmp_path: Path, body: str, message: str
) -> None:
    """Each mistake in a bank config names itself."""
    config = tmp_path / "banks.toml"
    config.write_text(body)
    with pytest.raises(InvalidBank) as raised:
        banks_from_toml(config)
    assert message in str(raised.value)


@pytest.mark.parametrize("value", ["known", "=x.txt", "known="])
def test_a_flag_without_name_or_path_is_refused(value: str) -> None:
    """--hash-bank takes NAME=PATH, both non-empty."""
    with pytest.raises(InvalidBank, match="NAME=PATH"):
        bank_from_flag(value)
