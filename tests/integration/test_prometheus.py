"""The deployment's monitoring against a real Prometheus: its config and rules pass promtool, and
every query of the Grafana dashboard and of the alert rules returns data from a running pipeline.

The processes are the compose file's, on loopback: a connector (the synthetic source, with a share
of HTML-served-as-images so errors flow), a scorer (with a review band and a hash bank),
``modstream serve``, the review console and the labeler. Prometheus gets ``deploy/prometheus.yml``
with its service discovery swapped for those ports and a 1 s scrape, and loads
``deploy/alerts.yml`` as it is. Prometheus and promtool come from Debian's ``prometheus``
package; without them these tests skip with one line, and with
``MODSTREAM_REQUIRE_PROMETHEUS=1`` (CI, whose run installs the package) they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import locations
import pytest
import pytest_asyncio
import yaml
from children import STOP_WITHIN_S, reap
from requirements import unavailable

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker, free_loopback_port
from modstream.labeler.keys import SigningKey
from modstream.models.decode import DecodeLimits
from modstream.models.preprocess import hash_image

from .support import unique_group

on_session_loop = pytest.mark.asyncio(loop_scope="session")

DEPLOY = locations.DEPLOY
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "modstream.json"
# What Grafana's $__rate_interval becomes at a 1 s scrape interval (four scrapes, at least).
RATE_INTERVAL = "10s"


@dataclass(frozen=True)
class Binaries:
    prometheus: str
    promtool: str


@pytest.fixture(scope="module")
def binaries() -> Binaries:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        unavailable(
            "PROMETHEUS",
            "prometheus and promtool are not installed (Debian: apt-get install prometheus)",
        )
    return Binaries(prometheus, promtool)


def _promtool(binaries: Binaries, *args: str) -> str:
    done = subprocess.run(
        [binaries.promtool, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_promtool_accepts_the_config_and_the_rules(binaries: Binaries) -> None:
    """The deployed config and alert rules are valid, and the alert unit tests pass: each alert
    fires on the series that should trip it and stays quiet on the healthy ones."""
    assert "SUCCESS" in _promtool(binaries, "check", "config", "prometheus.yml")
    assert "SUCCESS: 4 rules found" in _promtool(binaries, "check", "rules", "alerts.yml")
    assert "SUCCESS" in _promtool(binaries, "test", "rules", "alerts.test.yml")


# --- the queries ----------------------------------------------------------------------------


def dashboard_queries() -> dict[str, str]:
    """Each panel target's PromQL, by "panel title / legend"."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} / {target['legendFormat']}": target["expr"].replace(
            "$__rate_interval", RATE_INTERVAL
        )
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }


def alert_queries() -> dict[str, str]:
    """What each alert measures: its expression's operands, without the thresholds they are
    compared with (a quiet alert's whole expression is empty by design)."""
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"][0]["rules"]
    queries: dict[str, str] = {}
    for rule in rules:
        for index, operand in enumerate(measured_operands(rule["expr"])):
            queries[f"{rule['alert']} #{index}"] = operand
    return queries


_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_SET_OPERATORS = ("and", "or", "unless")


def measured_operands(expr: str) -> list[str]:
    """Split ``expr`` at its top-level comparisons and set operators; keep the non-numeric parts.

    >>> measured_operands('sum(x) > 1000 and sum(delta(x[10m])) > 0')
    ['sum(x)', 'sum(delta(x[10m]))']
    """
    parts, depth, start, i = [], 0, 0, 0
    text = " ".join(expr.split())
    while i < len(text):
        char = text[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == '"':
            i = text.index('"', i + 1)
        elif depth == 0:
            width = _operator_at(text, i)
            if width:
                parts.append(text[start:i])
                start = i + width
                i += width
                continue
        i += 1
    parts.append(text[start:])
    return [part.strip() for part in parts if not _is_number(part.strip())]


def _operator_at(text: str, i: int) -> int:
    for operator in _COMPARISONS:
        if text.startswith(operator, i):
            return len(operator)
    for word in _SET_OPERATORS:
        if text.startswith(f" {word} ", i - 1) and i > 0:
            return len(word)
    return 0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_operands_split_at_top_level_only() -> None:
    """Comparisons inside label matchers, calls and subqueries stay where they are."""
    assert measured_operands('up{job="modstream"} == 0') == ['up{job="modstream"}']
    assert measured_operands("a / clamp_min(b > 1, 1e-9) > 0.2") == ["a / clamp_min(b > 1, 1e-9)"]
    assert measured_operands('x{a!="b"} >= 3 or y') == ['x{a!="b"}', "y"]


# --- the running deployment -----------------------------------------------------------------


@dataclass
class Deployment:
    prometheus_url: str
    processes: dict[str, subprocess.Popen[bytes]]


def _modstream(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "modstream", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _prometheus(binaries: Binaries, config: Path, work: Path, port: int) -> subprocess.Popen[bytes]:
    with (work / "prometheus.log").open("wb") as sink:
        return subprocess.Popen(
            [
                binaries.prometheus, f"--config.file={config}",
                f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip


def _scrape_config(ports: dict[str, int], rules: Path) -> dict[str, Any]:
    """deploy/prometheus.yml, scraping the loopback processes every second."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules)]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == set(ports), f"every deployed job is scraped here: {jobs} vs {set(ports)}"
    for job in config["scrape_configs"]:
        for discovery in [key for key in job if key.endswith("_sd_configs")]:
            del job[discovery]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    return config


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def deployment(
    binaries: Binaries,
    broker: EmbeddedBroker,
    image_server: ImageServer,
    ov_cache_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployment]:
    assert image_server.served is not None
    work = tmp_path_factory.mktemp("prometheus")
    ports = {
        "modstream": free_loopback_port(),
        "modstream-connector": free_loopback_port(),
        "modstream-serve": free_loopback_port(),
        "modstream-review": free_loopback_port(),
        "modstream-labeler": free_loopback_port(),
        "modstream-verdicts": free_loopback_port(),
    }
    reviewers = work / "reviewers"
    reviewers.write_text("sre:prometheus-test-token-0123\n")
    prefix = f"prom-{uuid.uuid4().hex[:8]}"
    kafka = ["--bootstrap-servers", broker.bootstrap_servers, "--topic-prefix", prefix]
    urls = [*image_server.served.image_urls()[:4], f"{image_server.served.base_url}/bad/html"]
    cache = ["--cache-dir", str(ov_cache_dir)]
    # A hash bank holding the first served image, so the bank panel has lookups and matches.
    first = image_server.images[image_server.served.names[0]]
    (work / "known.txt").write_text(f"{hash_image(first, DecodeLimits()).pdq.hex} sample-0\n")
    (work / "banks.toml").write_text('[banks.known]\npath = "known.txt"\nmin_quality = 0\n')
    labeler_env = {**os.environ, "MODSTREAM_LABELER_KEY": SigningKey.generate().private_hex}
    processes = {
        "scorer": _modstream(
            "run", "--role", "scorer", *kafka, *cache, "--group-id", unique_group("prom"),
            "--allow-cidr", "127.0.0.0/8", "--metrics-port", str(ports["modstream"]),
            "--session-timeout", "2", "--fetch-max-wait", "0.02", "--review-at", "0.1",
            "--hash-banks", str(work / "banks.toml"),
            log=work / "scorer.log",
        ),
        "labeler": _modstream(
            "labeler", *kafka, "--labeler-did", "did:plc:prometheustest",
            "--group-id", unique_group("prom-labeler"), "--port", str(ports["modstream-labeler"]),
            log=work / "labeler.log", env=labeler_env,
        ),
        "verdicts": _modstream(
            "verdicts", *kafka, "--group-id", unique_group("prom-verdicts"),
            "--port", str(ports["modstream-verdicts"]), log=work / "verdicts.log",
        ),
        "review": _modstream(
            "review", "--bootstrap-servers", broker.bootstrap_servers,
            "--topics", f"{prefix}.review", "--reviewed-topic", f"{prefix}.reviewed",
            "--group-id", unique_group("prom-review"), "--reviewers-file", str(reviewers),
            "--port", str(ports["modstream-review"]), "--allow-cidr", "127.0.0.0/8",
            log=work / "review.log",
        ),
        "connector": _modstream(
            "run", "--role", "connector", *kafka, "--state-dir", str(work / "state"),
            "--metrics-port", str(ports["modstream-connector"]), "--source", "synthetic",
            "--source-option", f"urls={','.join(urls)}", "--source-option", "rate=15",
            "--source-option", "events=100000",
            log=work / "connector.log",
        ),
        "serve": _modstream(
            "serve", "--port", str(ports["modstream-serve"]), *cache, log=work / "serve.log"
        ),
    }  # fmt: skip
    config = work / "prometheus.yml"
    config.write_text(yaml.safe_dump(_scrape_config(ports, DEPLOY / "alerts.yml")))
    web_port = free_loopback_port()
    processes["prometheus"] = _prometheus(binaries, config, work, web_port)
    try:
        yield Deployment(f"http://127.0.0.1:{web_port}", processes)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_WITHIN_S)
            reap(process)


async def _query(session: aiohttp.ClientSession, base: str, expr: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/api/v1/query", params={"query": expr}) as response:
        body = await response.json()
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def _answers(
    deployment: Deployment, queries: dict[str, str], timeout_s: float
) -> dict[str, list[dict[str, Any]]]:
    """Each query's result once all of them return data (or, at the deadline, as they are)."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            for name, process in deployment.processes.items():
                assert process.poll() is None, f"{name} exited with {process.returncode}"
            try:
                answers = {
                    name: await _query(session, deployment.prometheus_url, expr)
                    for name, expr in queries.items()
                }
            except aiohttp.ClientConnectionError:  # Prometheus is still starting
                answers = {name: [] for name in queries}
            if all(answers.values()) or time.monotonic() > deadline:
                return answers
            await asyncio.sleep(1.0)


def _values(result: list[dict[str, Any]]) -> Iterator[float]:
    for series in result:
        yield float(series["value"][1])


@on_session_loop
async def test_every_dashboard_and_alert_query_returns_data(deployment: Deployment) -> None:
    """Scraping the connector, the scorer, the API, the review console, the labeler and the
    verdicts, Prometheus answers every panel's and every alert's query with at least one series;
    latency quantiles are real numbers of seconds."""
    queries = {**dashboard_queries(), **alert_queries()}
    assert len(queries) >= 20
    answers = await _answers(deployment, queries, timeout_s=45)
    empty = sorted(name for name, result in answers.items() if not result)
    assert not empty, f"queries without data: {empty}"
    for name in ("Round trip p50 and p99 / p50", "Round trip p50 and p99 / p99"):
        (value,) = _values(answers[name])
        assert math.isfinite(value) and 0.001 < value < 10, (name, value)
    assert 0 < next(_values(answers["Error share / errors"])) < 1


@on_session_loop
async def test_every_target_is_up_and_every_rule_evaluates(deployment: Deployment) -> None:
    """All six jobs answer their scrapes, and Prometheus evaluates the four alert rules without
    an error (each rule reports health "ok")."""
    answers = await _answers(deployment, {"up": "up == 1"}, timeout_s=30)
    jobs = {series["metric"]["job"] for series in answers["up"]}
    assert jobs == {"modstream", "modstream-connector", "modstream-serve", "modstream-review",
                    "modstream-labeler", "modstream-verdicts"}  # fmt: skip
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{deployment.prometheus_url}/api/v1/rules") as response,
    ):
        groups = (await response.json())["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 4
    assert all(rule["health"] == "ok" for rule in rules), [
        (rule["name"], rule.get("lastError")) for rule in rules
    ]
