"""What a user reads on stderr: no ERROR line while all is well, and a broker outage told in a
few modstream lines instead of a flood of the Kafka client's."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from apache_kafka import ApacheKafka
from children import reap, terminate
from polling import until
from requirements import unavailable

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker, free_loopback_port
from modstream.kafka.outage import broker_watch
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.stream.topics import Topics

from .support import OutputReader, outputs_of_process, unique_group

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The stream's periodic line: "12 results, 3 errors (http_status 2, ...) in 10.0 s ..."
_WINDOW = re.compile(r"\bresults?, \d+ errors?(?: \([^)]*\))? in (\d+\.\d) s")
_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (\S+) (.*)$")


@dataclass(frozen=True, slots=True)
class LogLine:
    at: datetime
    level: str
    logger: str
    message: str


def _log_lines(text: str) -> list[LogLine]:
    """The lines of the log format (``time LEVEL logger message``); tracebacks and the live view
    are not log lines."""
    lines = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is not None:
            at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
            lines.append(LogLine(at, match[2], match[3], match[4]))
    return lines


def _errors(text: str) -> list[str]:
    return [f"{line.logger} {line.message}" for line in _log_lines(text) if line.level == "ERROR"]


def _run_command(servers: str, prefix: str, cache_dir: Path, urls: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "modstream", "run", "--role", "all", "--bootstrap-servers", servers,
        "--topic-prefix", prefix, "--group-id", unique_group("logs"), "--metrics-port", "0",
        "--allow-cidr", "127.0.0.0/8", "--cache-dir", str(cache_dir),
        "--session-timeout", "6", "--fetch-max-wait", "0.05", "--source", "synthetic",
        "--source-option", f"urls={','.join(urls)}", "--source-option", "rate=10",
        "--source-option", "events=100000",
    ]  # fmt: skip


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


async def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    assert await terminate(process) == 0, _read(log)[-3000:]


async def test_a_healthy_demo_prints_no_error_line(ov_cache_dir: Path) -> None:
    """``modstream demo --verbose`` on its embedded broker (which grants no idempotent producers)
    logs INFO lines and no line at ERROR: probing the broker's capabilities alarms nobody."""
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "modstream", "demo", "--events", "40", "--rate", "40", "--verbose",
         "--cache-dir", str(ov_cache_dir)],
        capture_output=True, timeout=180,
    )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr[-3000:]
    lines = _log_lines(stderr)
    assert any(line.level == "INFO" for line in lines), "--verbose shows the INFO lines"
    assert _errors(stderr) == []
    idempotence = [line for line in lines if "idempotent" in line.message]
    assert len(idempotence) == 1, "the refused idempotence is told once per process"


async def _healthy_run(servers: str, image_server: ImageServer, cache_dir: Path, log: Path) -> str:
    assert image_server.served is not None
    prefix = f"logs-{uuid.uuid4().hex[:8]}"
    urls = image_server.served.image_urls()[:4]
    process = _spawn(_run_command(servers, prefix, cache_dir, urls), log)
    try:
        reader = await outputs_of_process(servers, Topics.with_prefix(prefix), 1, process)
        await reader.wait_until(
            lambda _outputs: _WINDOW.search(_read(log)) is not None,
            timeout_s=60,
            what="the periodic throughput line",
        )
        await reader.__aexit__(None, None, None)
        await _stop(process, log)
    finally:
        reap(process)
    return _read(log)


async def test_a_healthy_run_prints_no_error_line_and_its_periodic_line(
    broker: EmbeddedBroker, image_server: ImageServer, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """``modstream run --role all`` with a synthetic source, for more than one 10-second window:
    no line at ERROR, and the scorer's periodic throughput line."""
    text = await _healthy_run(broker.bootstrap_servers, image_server, ov_cache_dir,
                              tmp_path / "run.log")  # fmt: skip
    assert _errors(text) == []


@pytest.mark.timeout(240)
async def test_a_first_run_on_a_fresh_apache_kafka_prints_no_error_line(
    kafka_jars: str | None, image_server: ImageServer, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """On a cluster that has never had a consumer group, the group coordinator is not available
    until Kafka has created its offsets topic; the client retries, and that is no ERROR."""
    if kafka_jars is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    async with ApacheKafka(tmp_path / "kafka", kafka_jars) as kafka:
        text = await _healthy_run(kafka.bootstrap_servers, image_server, ov_cache_dir,
                                  tmp_path / "run.log")  # fmt: skip
    assert _errors(text) == []


OUTAGE_S = 15.0


@pytest.mark.timeout(300)
async def test_a_broker_outage_is_told_in_a_few_modstream_lines(
    kafka_jars: str | None, image_server: ImageServer, ov_cache_dir: Path, tmp_path: Path
) -> None:
    """Apache Kafka SIGKILLed under ``modstream run``, kept away for 15 s and restarted: the
    run's stderr says once that the broker is unreachable, sums it up every 10 s, says once that
    it is back with how long it was away, keeps its periodic throughput line (10-second windows,
    told during the outage too), and lets through fewer than 30 of the Kafka client's lines (it
    writes about 100 a second)."""
    if kafka_jars is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    assert image_server.served is not None
    prefix = f"logs-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    log = tmp_path / "run.log"
    urls = image_server.served.image_urls()[:4]
    async with ApacheKafka(tmp_path / "kafka", kafka_jars) as kafka:
        servers = kafka.bootstrap_servers
        process = _spawn(_run_command(servers, prefix, ov_cache_dir, urls), log)
        try:
            reader = await outputs_of_process(servers, topics, 20, process)
            await reader.__aexit__(None, None, None)
            killed_at = datetime.now()
            await kafka.kill()
            # The outage itself: the broker stays away this long, whatever the scorer does.
            await asyncio.sleep(OUTAGE_S)
            assert process.poll() is None, _read(log)[-3000:]
            await kafka.start()
            back_at = datetime.now()
            async with OutputReader(servers, topics.outputs()) as reader:
                after = len(reader.outputs)
                await reader.wait_until(
                    lambda _outputs: " is back after " in _read(log),
                    timeout_s=90,
                    what="the line saying that the broker is back",
                )
                await reader.wait_until(
                    lambda outputs: len(outputs) > after + 20,
                    timeout_s=60,
                    what="outputs after the outage",
                )
            await _stop(process, log)
        finally:
            reap(process)
    text = _read(log)
    lines = _log_lines(text)
    during = [line for line in lines if killed_at <= line.at <= back_at]
    foreign = [line for line in during if line.logger.startswith("aiokafka")]
    seconds = (back_at - killed_at).total_seconds()
    print(f"\n[outage] {len(during)} lines in {seconds:.1f} s ({len(during) / seconds:.1f}/s), "
          f"{len(foreign)} of them aiokafka's")  # fmt: skip
    ours = [line for line in lines if line.logger.startswith("modstream")]
    gone = [line for line in ours if " unreachable since " in line.message]
    back = [line for line in ours if " is back after " in line.message]
    assert len(gone) == 1, [line.message for line in gone] or text[-3000:]
    assert servers in gone[0].message
    assert len(back) == 1 and back[0].at > gone[0].at, [line.message for line in back]
    length = re.search(r" is back after (\d+\.\d) s", back[0].message)
    assert length is not None and OUTAGE_S < float(length[1]) < seconds + 3.0, back[0].message
    summaries = [line for line in ours if " still unreachable after " in line.message]
    assert 1 <= len(summaries) <= seconds / 10 + 1, [line.message for line in summaries]
    # Fewer than 30 for an outage of up to 30 s (the restart itself takes some), never more
    # than one a second: aiokafka's own rate is about a hundred.
    assert len(foreign) < max(30.0, seconds), "\n".join(f"{x.logger} {x.message}" for x in foreign)
    windows = [(line.at, float(m[1])) for line in ours if (m := _WINDOW.search(line.message))]
    assert max(window for _at, window in windows) < 11.0, f"the windows (s): {windows}"
    assert sum(killed_at < at < back_at for at, _window in windows) >= 2, "said in the outage"


async def test_the_watch_of_a_broker_says_when_it_is_away_and_when_it_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A watch started before its broker says once that it is unreachable and, once the broker
    has started, once that it answers; a second user of the same cluster shares the watch."""
    port = free_loopback_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    caplog.set_level(logging.WARNING, logger="modstream.kafka")

    def said(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "modstream.kafka"
                and text in r.getMessage()]  # fmt: skip

    async with broker_watch(kafka) as watch, broker_watch(kafka) as shared:
        assert shared is watch
        watch.probe_every_s = 0.1
        await until(lambda: watch.unreachable, "the watch to see the broker gone")
        async with EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log"):
            await until(lambda: not watch.unreachable, "the watch to see the broker back")
    assert len(said(" unreachable since ")) == 1, caplog.text
    assert len(said(" answers after ")) == 1, caplog.text
