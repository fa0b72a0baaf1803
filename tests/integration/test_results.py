"""``modstream results`` against a running ``modstream run`` on its embedded broker, as a user
does it: the run names the port (``--embedded-port``) and logs the command that watches it; the
results are printed per image, filtered by decision, followed; ``review`` and ``eval --results
kafka:`` work against the same broker; a missing topic, an absent broker and a taken port are one
line each."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import locations
import orjson
import pytest
import pytest_asyncio
from children import reap, terminate

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import free_loopback_port
from modstream.pipeline.stream.topics import Topics

from .support import outputs_of_process, produce

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

# Reference scores (tests/fixtures/ladder): far from the thresholds of balanced + review at 0.3.
FLAGGED, REVIEW, SAFE = "syn_11_5.png", "syn_12_0.png", "syn_14_0.png"  # 0.98, 0.38, 0.02
EXPECTED = {"synthetic-0": "flagged", "synthetic-1": "review", "synthetic-2": "safe"}
TOKEN = "carol-token-0123456789"


@dataclass(frozen=True)
class Running:
    servers: str
    port: int
    stderr: Path
    urls: dict[str, str]  # file name -> URL on the image server
    process: subprocess.Popen[bytes]


async def _modstream(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "modstream", *args], capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def _spawn(*args: str, stderr: Path) -> subprocess.Popen[bytes]:
    """A modstream command in the background, its log (stderr) in the file ``stderr``."""
    with stderr.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "modstream", *args], stdout=subprocess.DEVNULL, stderr=log
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(
    ov_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    """``modstream run`` with the embedded broker on a fixed port and a synthetic source of a
    flagged, a review, a safe image and an HTML page, until its four results are published."""
    folder = tmp_path_factory.mktemp("results")
    async with ImageServer(root=locations.LADDER) as images:
        assert images.served is not None
        urls = {name: f"{images.served.base_url}/img/{name}" for name in images.served.names}
        sources = [urls[FLAGGED], urls[REVIEW], urls[SAFE], f"{images.served.base_url}/bad/html"]
        port = free_loopback_port()
        stderr = folder / "run.log"
        process = _spawn(
            "run", "--embedded-port", str(port), "--metrics-port", "0",
            "--state-dir", str(folder / "state"), "--cache-dir", str(ov_cache_dir),
            "--decode", "exact", "--review-at", "0.3", "--allow-cidr", "127.0.0.0/8",
            "--source", "synthetic", "--source-option", f"urls={','.join(sources)}",
            "--source-option", "events=4", "--source-option", "rate=50", stderr=stderr,
        )  # fmt: skip
        try:
            servers = f"127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while "watch the results with" not in stderr.read_text():  # the topics exist
                assert process.poll() is None, stderr.read_text()
                assert time.monotonic() < deadline, stderr.read_text()
                await asyncio.sleep(0.1)
            reader = await outputs_of_process(servers, Topics(), 4, process)
            await reader.__aexit__(None, None, None)
            yield Running(servers, port, stderr, urls, process)
        finally:
            await terminate(process)


async def test_run_logs_the_command_that_watches_its_results(running: Running) -> None:
    """A run on the embedded broker logs, once its topics exist, the exact command to watch it,
    on the port given with --embedded-port."""
    log = running.stderr.read_text()
    watch = f"modstream results --bootstrap-servers 127.0.0.1:{running.port} --follow"
    assert f"INFO modstream.service watch the results with: {watch}\n" in log


async def test_results_print_one_line_per_image_with_its_decision(running: Running) -> None:
    """``--json`` prints each result record once, as the run published it: the three images
    with the decision their reference score gives, and the HTML page as a typed error."""
    done = await _modstream("results", "--bootstrap-servers", running.servers, "--json")
    assert done.returncode == 0, done.stderr
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted(record["id"] for record in records) == [f"synthetic-{n}" for n in range(4)]
    by_id = {record["id"]: record for record in records}
    assert {key: by_id[key]["decision"] for key in EXPECTED} == EXPECTED
    assert by_id["synthetic-3"]["error"]["kind"] == "not_an_image"
    assert by_id["synthetic-0"]["url"] == f"{running.urls[FLAGGED]}?n=0"
    assert done.stderr == ""


async def test_the_table_shows_score_decision_and_url_and_counts_them(running: Running) -> None:
    """Without --json each result is a line as ``modstream score`` prints one (score, decision,
    url; an error's kind and message), and stderr counts the results per topic."""
    done = await _modstream("results", "--bootstrap-servers", running.servers)
    assert done.returncode == 0, done.stderr
    lines = sorted(done.stdout.splitlines(), key=lambda line: line.split()[-1])
    flagged = re.escape(f"{running.urls[FLAGGED]}?n=0")
    assert re.fullmatch(rf" +0\.9\d{{3}}  flagged {{12}}{flagged}", lines[0]), lines
    assert re.fullmatch(r" +0\.3\d{3}  review {13}\S+/syn_12_0\.png\?n=1", lines[1]), lines
    assert re.fullmatch(r" +0\.0\d{3}  safe {15}\S+/syn_14_0\.png\?n=2", lines[2]), lines
    assert re.fullmatch(r"   error  not_an_image {7}\S+/bad/html\?n=3  \(.+\)", lines[3]), lines
    assert done.stderr == (
        "4 results: 1 on images.flagged, 1 on images.review, 1 on images.safe, "
        "0 on images.matched, 1 on images.errors\n"
    )


async def test_decision_filters_the_results(running: Running) -> None:
    """``--decision`` (repeatable, ``errors`` too) prints only the results with those decisions."""
    done = await _modstream(
        "results", "--bootstrap-servers", running.servers, "--json",
        "--decision", "flagged", "--decision", "errors",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ids = sorted(orjson.loads(line)["id"] for line in done.stdout.splitlines())
    assert ids == ["synthetic-0", "synthetic-3"]


async def test_follow_prints_a_new_result_as_it_arrives_and_stops_on_sigint(
    running: Running,
) -> None:
    """``--follow`` prints the results so far, then one scored after it started, and Ctrl-C
    ends it with status 0."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modstream", "results", "--bootstrap-servers", running.servers,
        "--follow", "--json", "--decision", "safe",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = orjson.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert first["id"] == "synthetic-2"
        late = {"id": "late", "url": f"{running.urls[SAFE]}?late", "source": "test"}
        await produce(running.servers, "images.incoming", [orjson.dumps(late)], partitions=1)
        second = orjson.loads(await asyncio.wait_for(process.stdout.readline(), 60))
        assert (second["id"], second["decision"]) == ("late", "safe")
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _queue(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with contextlib.suppress(aiohttp.ClientConnectionError):
        async with session.get(f"{url}/api/v1/queue", headers=headers) as response:
            assert response.status == 200, await response.text()
            items: list[dict[str, Any]] = (await response.json())["items"]
            return items
    return []  # not listening yet


async def test_review_and_export_work_against_the_runs_embedded_broker(
    running: Running, tmp_path: Path
) -> None:
    """The review console, pointed at the run's embedded broker, offers its review item; the
    decision is exported with ``review --export``, and ``eval --results kafka:`` reads the
    run's topics from the same broker."""
    reviewers = tmp_path / "reviewers"
    reviewers.write_text(f"carol:{TOKEN}\n")
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    console = _spawn(
        "review", "--bootstrap-servers", running.servers, "--reviewers-file", str(reviewers),
        "--port", str(port), "--allow-cidr", "127.0.0.0/8", stderr=tmp_path / "review.log",
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while not (items := await _queue(session, url)):
                assert console.poll() is None and time.monotonic() < deadline
                await asyncio.sleep(0.2)
            assert [item["id"] for item in items] == ["synthetic-1"]
            decision = {"id": "synthetic-1", "label": "nsfw"}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with session.post(
                f"{url}/api/v1/decisions", data=orjson.dumps(decision), headers=headers
            ) as response:
                assert response.status == 202, await response.text()
        assert await terminate(console) == 0
    finally:
        reap(console)
    exported = tmp_path / "decisions.jsonl"
    done = await _modstream(
        "review", "--bootstrap-servers", running.servers, "--export", str(exported)
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 1 decisions" in done.stderr
    [decided] = [orjson.loads(line) for line in exported.read_text().splitlines()]
    assert (decided["id"], decided["label"], decided["reviewer"]) == (
        "synthetic-1",
        "nsfw",
        "carol",
    )
    done = await _modstream(
        "eval", "--results", "kafka:images.review", "--bootstrap-servers", running.servers,
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout.splitlines()[-1])["weak_labels"]["records"] == 1


async def test_a_missing_topic_and_an_absent_broker_are_one_line(running: Running) -> None:
    """A prefix the cluster has no topics for is a usage error (2); an address nothing listens
    on is broker_unavailable (1); each is one line on stderr and nothing on stdout."""
    done = await _modstream(
        "results", "--bootstrap-servers", running.servers, "--topic-prefix", "nothing"
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "modstream results: topic nothing.flagged, nothing.review, nothing.safe, nothing.matched, "
        "nothing.errors "
        f"do not exist on {running.servers}; is --topic-prefix the pipeline's?\n"
    )
    nowhere = f"127.0.0.1:{free_loopback_port()}"
    done = await _modstream("results", "--bootstrap-servers", nowhere)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(
        f"modstream results: broker_unavailable: no Kafka broker answered with PLAINTEXT: {nowhere}"
    )
    assert done.stderr.count("\n") == 1


async def test_a_second_run_on_the_same_embedded_port_says_it_is_taken(running: Running) -> None:
    """``--embedded-port`` of a port in use stops the run at once with one line (status 1),
    instead of a broker that cannot bind and clients that reach the other one."""
    done = await _modstream(
        "run", "--embedded-port", str(running.port), "--metrics-port", "0", "--role", "scorer"
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"modstream run: port_in_use: cannot start the embedded broker on {running.servers}: "
        "the port is in use (another modstream?); choose another --embedded-port"
    )


async def test_a_reader_that_stops_reading_ends_it_quietly(running: Running) -> None:
    """``modstream results --follow | head -1``: once the pipe is closed, the command ends with
    status 0 and no traceback, rather than following forever or crashing."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "modstream", "results", "--bootstrap-servers", running.servers,
            "--follow", stdout=write_end, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    finally:
        os.close(write_end)
    _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert (process.returncode, err) == (0, b"")
