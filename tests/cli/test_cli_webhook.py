"""From the user's side: the webhook's messages spell its options as the flags and lists do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SECRET = "0123456789abcdef0123"


def _run_webhook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modstream", "run", "--role", "connector", "--source", "webhook",
         *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "MODSTREAM_WEBHOOK_SECRET": SECRET},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--object-base-url", "s3://bucket"), "--object-base-url must be an http(s) URL"),
        (("--source-option", "max_body_bytes=0"), "max-body-bytes, queue-size and ack-timeout-s"),
        (
            ("--source-option", "nope=1"),
            "valid: host, port, object-base-url, max-body-bytes, ack-timeout-s, queue-size",
        ),
    ],
)
def test_option_mistakes_name_the_option_as_it_is_typed(
    args: tuple[str, ...], expected: str
) -> None:
    """Each mistake is one line, exit 2, naming options with dashes (the flags' and the option
    list's spelling), never a field name with underscores."""
    done = _run_webhook(*args)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert expected in line
    assert "_" not in line.replace("max_body_bytes=0", "")
