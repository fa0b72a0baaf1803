"""From the user's side: short secrets are refused at start, and listeners bind loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI_TIMEOUT_S = 60.0


def _modstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modstream", *args],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_serve_refuses_a_short_api_key_in_one_line_naming_file_and_line(tmp_path: Path) -> None:
    """``serve --api-key-file`` with a 5-character key exits 2 before loading any model, with one
    line that names the file and the line, not the key."""
    keys = tmp_path / "keys"
    keys.write_text("0123456789abcdef0123\nabcde\n")
    done = _modstream("serve", "--port", "0", "--api-key-file", str(keys))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"modstream serve: --api-key-file {keys}, line 2: the key is 5 ")
    assert "16" in line and "abcde" not in line


def test_run_refuses_a_short_api_key_for_its_api_too(tmp_path: Path) -> None:
    """``run --serve-port`` reads its keys by the same rule."""
    keys = tmp_path / "keys"
    keys.write_text("short\n")
    done = _modstream("run", "--serve-port", "0", "--api-key-file", str(keys))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"--api-key-file {keys}, line 1: the key is 5 characters" in line


def test_the_webhook_refuses_a_short_shared_secret_naming_the_variable() -> None:
    """``--source webhook`` with an 11-character MODSTREAM_WEBHOOK_SECRET exits 2 with one line."""
    done = _modstream(
        "run", "--role", "connector", "--source", "webhook",
        env={"MODSTREAM_WEBHOOK_SECRET": "test-secret"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("modstream run: MODSTREAM_WEBHOOK_SECRET: the secret is 11 characters")


def test_every_listener_says_in_its_help_that_it_binds_loopback() -> None:
    """``run``'s metrics, its API and webhook, ``serve`` and ``review`` default to 127.0.0.1."""
    run_help = " ".join(_modstream("run", "--help").stdout.split())
    assert "--metrics-host METRICS_HOST address the metrics bind (default: 127.0.0.1;" in run_help
    assert "--serve-host" in run_help and "--webhook-host" in run_help
    for command in ("serve", "review"):
        text = " ".join(_modstream(command, "--help").stdout.split())
        assert "127.0.0.1" in text, command
