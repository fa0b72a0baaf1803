"""The one rule for secrets: API keys, reviewer tokens and the webhook secret are 16+ characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from modstream.errors import ConfigError
from modstream.review.reviewers import read_reviewers
from modstream.web.secrets import MIN_SECRET_LENGTH, read_api_keys

LONG = "k" * MIN_SECRET_LENGTH


def test_api_keys_of_sixteen_characters_are_read_with_comments_and_blanks_skipped(
    tmp_path: Path,
) -> None:
    """Keys at the limit are kept; comment and blank lines are not keys."""
    path = tmp_path / "keys"
    path.write_text(f"# the API keys\n\n{LONG}\n  {LONG}-second  \n")
    assert read_api_keys(path) == frozenset({LONG, f"{LONG}-second"})


def test_a_short_api_key_is_refused_naming_the_file_and_its_line(tmp_path: Path) -> None:
    """One key shorter than the rule refuses the file, and the message says where it is."""
    path = tmp_path / "keys"
    path.write_text(f"{LONG}\n# a comment\nhunter2\n")
    with pytest.raises(ConfigError) as caught:
        read_api_keys(path)
    assert str(caught.value).startswith(f"--api-key-file {path}, line 3: the key is 7 characters")
    assert "shorter than 16" in str(caught.value) and "hunter2" not in str(caught.value)


def test_reviewer_tokens_follow_the_same_rule_and_message(tmp_path: Path) -> None:
    """A reviewer token one character short is refused like an API key, naming file and line."""
    path = tmp_path / "reviewers"
    path.write_text(f"ana:{LONG}\nbo:{LONG[:-1]}\n")
    with pytest.raises(ConfigError, match=rf"{path}, line 2: bo's token is 15 characters"):
        read_reviewers(path)
