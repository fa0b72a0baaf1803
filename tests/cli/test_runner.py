"""Every command's exits, from the one runner: usage 2, a typed failure in one line and 1, a bug
in one line too (its traceback only in the debug log), the code a command returns."""

from __future__ import annotations

import pytest

from modstream.cli.runner import run_command
from modstream.errors import BrokerDenied, ConfigError


def _setup_refused() -> None:
    raise ConfigError("--labeler-did is required")


async def _main(code: int | None) -> int | None:
    return code


async def _denied(_settings: None) -> None:
    raise BrokerDenied("the broker denies writing to images.safe")


async def _bug(_settings: None) -> None:
    raise KeyError("oops")


def test_a_refused_setup_is_a_usage_error_and_nothing_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran: list[None] = []

    async def main(settings: None) -> None:
        ran.append(settings)

    assert run_command("labeler", _setup_refused, main) == 2
    assert capsys.readouterr().err == "modstream labeler: --labeler-did is required\n"
    assert ran == []


def test_a_typed_failure_is_its_kind_in_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_command("run", lambda: None, _denied) == 1
    assert capsys.readouterr().err == (
        "modstream run: broker_denied: the broker denies writing to images.safe\n"
    )


def test_a_bug_is_one_line_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command("serve", lambda: None, _bug) == 1
    err = capsys.readouterr().err
    assert err == "modstream serve: internal error: KeyError: 'oops'\n"


@pytest.mark.parametrize(("code", "exit"), [(None, 0), (0, 0), (1, 1), (3, 3)])
def test_the_code_a_command_returns_is_its_exit(code: int | None, exit: int) -> None:
    assert run_command("demo", lambda: code, _main) == exit


def test_what_a_command_lets_escape_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The commands that keep their own handling (score, hash, eval, results) still end in one
    line when something escapes it: ``modstream.cli.main`` is the last net."""
    import argparse

    from modstream import cli

    def escapes(_args: argparse.Namespace) -> int:
        raise BrokerDenied("the broker denies reading images.flagged")

    def bug(_args: argparse.Namespace) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(cli.hash, "run", escapes)
    assert cli.main(["hash", "x.jpg"]) == 1
    assert capsys.readouterr().err == (
        "modstream hash: broker_denied: the broker denies reading images.flagged\n"
    )
    monkeypatch.setattr(cli.hash, "run", bug)
    assert cli.main(["hash", "x.jpg"]) == 1
    assert capsys.readouterr().err == "modstream hash: internal error: KeyError: 'oops'\n"
