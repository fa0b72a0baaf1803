"""The Kafka flags as a user meets them: each ``--help`` says what the command does without
``--bootstrap-servers`` (only ``run`` and ``demo`` start the embedded broker, and only they take
``--embedded-port``), and the usage errors say the same."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modstream(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modstream", *args], capture_output=True, text=True, timeout=60
    )


def _bootstrap_help(command: str) -> str:
    """The help of ``--bootstrap-servers`` in ``modstream COMMAND --help``, on one line."""
    done = _modstream(command, "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    start = text.index("--bootstrap-servers HOST:PORT[,...] ")
    return text[start : text.index(" --kafka-security-protocol {", start)]


@pytest.mark.parametrize("command", ["run", "demo"])
def test_commands_that_start_the_embedded_broker_say_so(command: str) -> None:
    """``run`` and ``demo`` start the embedded broker without --bootstrap-servers, and offer
    --embedded-port for its port."""
    said = _bootstrap_help(command)
    assert "without it the embedded development broker is started on 127.0.0.1" in said
    assert "--embedded-port PORT the port of the embedded broker on 127.0.0.1" in said


@pytest.mark.parametrize(
    ("command", "claim"),
    [
        ("results", "required: results starts no broker"),
        ("review", "required: the console starts no broker"),
        ("eval", "needed only for --results kafka:TOPIC, which reads that cluster: eval starts "
                 "no broker"),
    ],
)  # fmt: skip
def test_commands_that_need_a_cluster_say_they_start_no_broker(command: str, claim: str) -> None:
    """``results``, ``review`` and ``eval`` need a cluster: their help says so, claims no
    embedded broker, and they have no --embedded-port."""
    said = _bootstrap_help(command)
    assert claim in said
    assert "embedded development broker is started" not in said
    assert "--embedded-port PORT" not in said


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["review", "--export", "out.jsonl"],
         "modstream review: --bootstrap-servers is required: the console starts no broker, it "
         "reads a cluster's review topics (a modstream run on its embedded broker logs its "
         "address)"),
        (["eval", "--results", "kafka:images.review"],
         "modstream eval: --results kafka:images.review needs --bootstrap-servers: eval starts no "
         "broker, it reads the topic from a cluster (a modstream run on its embedded broker logs "
         "its address)"),
        (["eval", "--results", "kafka:images.review", "--kafka-ssl-cafile", "ca.pem"],
         "modstream eval: --kafka-ssl-cafile needs --bootstrap-servers"),
        (["run", "--bootstrap-servers", "127.0.0.1:9092", "--embedded-port", "9093"],
         "modstream run: --embedded-port is for the embedded broker, which is not started with "
         "--bootstrap-servers"),
    ],
)  # fmt: skip
def test_usage_errors_say_what_is_missing(args: list[str], said: str) -> None:
    """Without a cluster to read, or with a port for a broker that will not start, the command
    exits 2 with one line saying so."""
    done = _modstream(*args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == said


def test_results_without_a_cluster_is_an_argparse_usage_error() -> None:
    """``modstream results`` names --bootstrap-servers as required (status 2)."""
    done = _modstream("results")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "modstream results: error: the following arguments are required: --bootstrap-servers"
    )


def test_an_embedded_port_must_be_a_port_number() -> None:
    """``--embedded-port 70000`` is refused by the parser, not by a broker that cannot bind."""
    done = _modstream("run", "--embedded-port", "70000")
    assert done.returncode == 2
    assert "70000 is not a port number (1-65535)" in done.stderr


def test_eval_results_from_an_unreachable_cluster_is_one_broker_line_and_exit_1() -> None:
    """``eval --results kafka:TOPIC`` against no broker fails as review and results do: exit 1
    with one ``broker_unavailable`` line, not a usage error."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "modstream", "eval", "--results", "kafka:images.review",
         "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modstream eval: broker_unavailable: "), lines
