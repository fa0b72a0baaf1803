"""``--help`` reads as plain text and says every default, from the user's side."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from modstream.cli import build_parser
from modstream.cli.helptext import plain_text

COMMANDS = ("score", "run", "serve", "eval", "review", "demo", "hash")
MARKUP = re.compile(r"``|:(?:mod|func|class|meth|data|attr):`")


def _help(command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "modstream", command, "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())  # one line: argparse wraps where it likes


def test_plain_text_reduces_roles_and_literals_to_their_words() -> None:
    """Known answers for each markup form the docstrings use."""
    assert plain_text("``modstream serve`` (see :mod:`modstream.serve`)") == (
        "modstream serve (see modstream.serve)"
    )
    assert plain_text(":func:`~modstream.pipeline.moderate.window.in_order`") == "in_order"
    assert plain_text(":class:`the loop <modstream.kafka.consume.ConsumeLoop>`") == "the loop"
    assert plain_text("no markup, 5 `ticks`") == "no markup, 5 `ticks`"


@pytest.mark.parametrize("command", COMMANDS)
def test_no_help_shows_restructuredtext_markup(command: str) -> None:
    """``modstream COMMAND --help`` has no ``literal`` or :role:`x` markup left."""
    text = _help(command)
    assert not MARKUP.search(text), MARKUP.search(text)


def test_the_flags_a_newcomer_asked_about_say_their_defaults() -> None:
    """--batch-size, --max-image-mb, --partitions, --metrics-port and --role say their default,
    and --role says what each role does."""
    run = _help("run")
    assert "--batch-size BATCH_SIZE max images per batch (default: 8)" in run
    assert "--max-image-mb MAX_IMAGE_MB largest encoded image accepted (default: 20.0)" in run
    assert "--partitions PARTITIONS for created topics (default: 4)" in run
    assert "Prometheus port; 0 turns it off (default: 9108)" in run
    assert "connector: run the --source connectors into it" in run and "(default: all)" in run
    assert "(default: 1)" in run.split("--replication-factor REPLICATION_FACTOR", 2)[2]


def _sub_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (choices,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(choices.choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_with_a_default_names_it_in_its_help(command: str) -> None:
    """Each option whose default is a value (not unset, off or empty) shows that value."""
    parser = _sub_parsers()[command]
    options = " ".join(parser.format_help().split("options:", 1)[1].split())  # after the usage
    formatter = parser._get_formatter()
    for action in parser._actions:
        default = action.default
        if not action.option_strings or default in (None, False, [], argparse.SUPPRESS):
            continue
        invocation = formatter._format_action_invocation(action)
        entry = options.split(invocation + " ", 1)[1][:300]  # its help, and a little more
        spelled = {str(default)} | ({f"{default:g}"} if isinstance(default, float) else set())
        assert "default" in entry.lower() or any(s in entry for s in spelled), (
            command, action.option_strings, default
        )  # fmt: skip


def test_durations_are_seconds_and_the_old_milliseconds_spelling_works_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--max-delay, --session-timeout and --fetch-max-wait take seconds; the old -ms spellings
    are still taken (as seconds inside) with one deprecation line each, naming the new flag."""
    parser = build_parser()
    args = parser.parse_args(
        ["run", "--session-timeout", "2", "--fetch-max-wait", "0.02", "--max-delay", "0"]
    )
    assert (args.session_timeout_s, args.fetch_max_wait_s, args.max_delay_s) == (2.0, 0.02, 0.0)
    assert capsys.readouterr().err == ""
    old = parser.parse_args(["run", "--session-timeout-ms", "2000", "--max-delay-ms", "5"])
    assert (old.session_timeout_s, old.max_delay_s) == (2.0, 0.005)
    assert capsys.readouterr().err.splitlines() == [
        "modstream: --session-timeout-ms is deprecated: use --session-timeout 2 (durations are "
        "in seconds)",
        "modstream: --max-delay-ms is deprecated: use --max-delay 0.005 (durations are in seconds)",
    ]
    assert build_parser().parse_args(["score", "x"]).max_delay_s == 0.01  # BatchPolicy's
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--session-timeout", "0"])


def test_the_flags_defaults_are_the_configs() -> None:
    """What a flag defaults to is what the settings it fills default to: the scorer's, the
    stream's, the pipeline's and the moderation step's (read from them, or, for --bank-reload,
    whose module is too heavy to load for --help, checked here)."""
    from modstream.models.device_spec import DeviceSpec
    from modstream.pipeline.moderate.step import ModerationSettings
    from modstream.pipeline.score.config import ScorerConfig
    from modstream.pipeline.stream.config import StreamConfig
    from modstream.pipeline.stream.service import PipelineSettings

    run = build_parser().parse_args(["run"])
    scorer, stream, pipeline = ScorerConfig(cache_dir=None), StreamConfig(), PipelineSettings()
    assert (run.batch_size, run.max_delay_s) == (scorer.batch.max_batch_size,
                                                 scorer.batch.max_delay_s)  # fmt: skip
    assert (run.confirm_at, run.screening, run.screen_precision) == (
        scorer.confirm_at, scorer.screening, scorer.screen_precision)  # fmt: skip
    assert (run.precision, run.performance_hint) == (DeviceSpec().precision,
                                                     DeviceSpec().performance_hint)  # fmt: skip
    assert (run.group_id, run.max_in_flight) == (stream.group_id, stream.max_in_flight)
    assert (run.partitions, run.replication_factor, run.metrics_port) == (
        pipeline.partitions, pipeline.replication_factor, pipeline.metrics_port)  # fmt: skip
    assert run.bank_reload == ModerationSettings().bank_reload_s
