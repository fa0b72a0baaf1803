"""``deploy/docker-compose.yml`` brought up for real on a container engine (``make test-deploy``).

The stack runs as a user runs it, ``compose up -d --build``, with one override, written here from
the compose file itself: the connector's source is a Jetstream replica (and the CDN replica its
image URLs name) served from this test process, which the containers reach at the engine's host
address, and the scorers may fetch from that (private) address. Grafana is left out (no image
can be built here; see ``tests/stack``). Every wait has a deadline; no test sleeps for a result.

Podman runs no health check by itself without systemd (it asks systemd for a timer): a thread
here does the timer's job, ``podman healthcheck run`` on each container on its interval, so the
checks that run are the compose file's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
import subprocess
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import locations
import orjson
import pytest
import yaml
from replicas.cdn import CdnReplica
from replicas.jetstream import JetstreamReplica, images, post
from requirements import unavailable
from stack import (
    COMPOSE_FILE,
    LEFT_OUT,
    CommandFailed,
    Engine,
    EngineUnavailable,
    compose_images,
    find_engine,
)

from modstream.demo.imageserver import sample_images

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(900)]

PROJECT = "modstream-test"
HOST = "host.containers.internal"  # the engine's address of the host, in every container
# The replicas' address is private: the scorers are told they may fetch from these ranges.
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
AUTHOR = "did:plc:deploytierauthor0000000"
T = TypeVar("T")


class Replicas:
    """Jetstream and CDN replicas on an event loop of their own, reachable from containers."""

    def __init__(self) -> None:
        self.jetstream = JetstreamReplica()
        self.cdn = CdnReplica()
        self.jetstream.host = self.cdn.host = "0.0.0.0"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._bodies = [body for name, body in sample_images().items() if name.endswith(".jpg")]
        self._clock = int(time.time() * 1_000_000)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def __enter__(self) -> Replicas:
        self._thread.start()
        self.call(self.jetstream.__aenter__())
        self.call(self.cdn.__aenter__())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.call(self.cdn.__aexit__(None, None, None))
        self.call(self.jetstream.__aexit__(None, None, None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def publish(self, count: int) -> list[str]:
        """``count`` posts of one image each; the result ids they must come back as."""
        frames, ids = [], []
        for _ in range(count):
            rkey = f"3k{uuid.uuid4().hex[:12]}"
            cid = f"bafkrei{uuid.uuid4().hex}{'q' * 20}"
            self.cdn.put(AUTHOR, cid, self._bodies[len(ids) % len(self._bodies)])
            self._clock += 1000
            frames.append(post(AUTHOR, rkey, self._clock, images((cid, ""))))
            ids.append(f"at://{AUTHOR}/app.bsky.feed.post/{rkey}#0")
        self.call(self.jetstream.publish(*frames))
        return ids


class HealthTimer:
    """Runs each container's health check on its own interval, as systemd's timer would."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._last: dict[str, float] = {}

    def __enter__(self) -> HealthTimer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=120)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            # Containers come and go (down, up): a vanished one is simply not checked.
            with contextlib.suppress(CommandFailed, subprocess.TimeoutExpired):
                self._check_due()

    def _check_due(self) -> None:
        for container in self._engine.containers(PROJECT):
            checked = container.get("Config", {}).get("Healthcheck") or {}
            if container["State"]["Status"] != "running" or not checked.get("Test"):
                continue
            name = str(container["Name"]).lstrip("/")
            interval_s = int(checked.get("Interval") or 30_000_000_000) / 1e9
            if time.monotonic() - self._last.get(name, -math.inf) < interval_s:
                continue
            self._last[name] = time.monotonic()
            self._engine.run("healthcheck", "run", name, check=False, timeout_s=60)


@dataclass
class Stack:
    engine: Engine
    files: list[Path]
    services: list[str]
    replicas: Replicas
    since: str  # when the stack was brought up, as the engine's events want it
    published: list[str] = field(default_factory=list)

    def compose(self, *args: str, timeout_s: float = 600) -> str:
        return self.engine.compose_run(self.files, PROJECT, *args, timeout_s=timeout_s).stdout

    def containers(self, service: str) -> list[dict[str, Any]]:
        return [
            c for c in self.engine.containers(PROJECT)
            if c["Config"]["Labels"].get("com.docker.compose.service") == service
        ]  # fmt: skip

    def one(self, service: str) -> str:
        (container,) = self.containers(service)
        return str(container["Name"]).lstrip("/")

    def logs(self, service: str) -> str:
        return "".join(
            (done := self.engine.run("logs", str(c["Name"]).lstrip("/"), check=False)).stdout
            + done.stderr
            for c in self.containers(service)
        )

    def kafka_tool(self, tool: str, *args: str) -> str:
        """A Kafka tool's answer, run in the broker's container (asked again while it fails:
        a JVM tool on a busy two-core machine can time out)."""
        command = ("exec", self.one("kafka"), f"/opt/kafka/bin/{tool}.sh", "--bootstrap-server",
                   "localhost:9092", *args)  # fmt: skip
        done = until(lambda: self.engine.run(*command, timeout_s=120, check=False),
                     lambda d: d.returncode == 0, 180, f"{tool} answer")  # fmt: skip
        return done.stdout

    def results(self) -> Counter[str] | str:
        """How many results each id has on the result topics, read as an operator would, with
        ``modstream results`` inside the stack's network; what it said when it could not."""
        done = self.engine.run(
            "exec", self.one("serve"), "modstream", "results", "--bootstrap-servers",
            "kafka:9092", "--json", timeout_s=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            return f"modstream results exited {done.returncode}: {done.stderr[-1500:]}"
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        return Counter(str(orjson.loads(line)["id"]) for line in lines)

    def wait_for_results(self, ids: list[str], *, timeout_s: float = 240) -> Counter[str]:
        found = until(self.results, lambda r: isinstance(r, Counter) and set(ids) <= set(r),
                      timeout_s, f"results for {len(ids)} events")  # fmt: skip
        assert isinstance(found, Counter)
        return found


def until(probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float, what: str) -> T:
    """Probe every second until ``done`` holds for the answer; fail with the last one."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = probe()
        if done(answer):
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s:.0f} s; last: {str(answer)[-1500:]}")
        time.sleep(1.0)


def _override(tmp: Path, replicas: Replicas) -> Path:
    """The one override: the connector reads the Jetstream replica; scorers may fetch from it."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    connector = [part for part in services["connector"]["command"] if part != "--source=jetstream"]
    connector += [
        "--source=jetstream",
        f"--jetstream-url=ws://{HOST}:{replicas.jetstream.port}/subscribe",
        f"--bsky-image-base-url=http://{HOST}:{replicas.cdn.port}",
    ]
    scorer = [*services["scorer"]["command"], *(f"--allow-cidr={cidr}" for cidr in PRIVATE)]
    override: dict[str, Any] = {"services": {"connector": {"command": connector},
                                             "scorer": {"command": scorer}}}  # fmt: skip
    path = tmp / "replica.override.yml"
    path.write_text(yaml.safe_dump(override))
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        engine = find_engine()
        missing = [i for i in compose_images().values() if engine.image_digest(i) is None]
    except EngineUnavailable as exc:
        unavailable("DEPLOY", str(exc))
    if missing:
        unavailable("DEPLOY", f"{', '.join(missing)} not built (python -m stack --prepare)")
    services = [name for name, s in yaml.safe_load(COMPOSE_FILE.read_text())["services"].items()
                if name not in LEFT_OUT and not s.get("profiles")]  # fmt: skip
    tmp = tmp_path_factory.mktemp("stack")
    with Replicas() as replicas, HealthTimer(engine):
        files = [COMPOSE_FILE, _override(tmp, replicas)]
        engine.compose_run(files, PROJECT, "down", "-v", timeout_s=300, check=False)
        since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        running = Stack(engine, files, services, replicas, since)
        try:
            running.compose("up", "-d", "--build", *services, timeout_s=900)
            yield running
        finally:
            for service in services:
                (tmp / f"{service}.log").write_text(running.logs(service))
            engine.compose_run(files, PROJECT, "down", "-v", timeout_s=300, check=False)


def _events(stack: Stack, service: str) -> list[tuple[str, str]]:
    """(time, start|died) of the service's containers since the stack came up, oldest first.
    (Filtered here: podman 4.3 applies only one of several label filters.)"""
    out = stack.engine.run(
        "events", "--stream=false", "--since", stack.since, "--filter", "event=start",
        "--filter", "event=died", "--format", "json", timeout_s=60,
    ).stdout  # fmt: skip
    events = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    return sorted(
        (str(e["Time"]), str(e["Status"]))
        for e in events
        if e.get("Attributes", {}).get("com.docker.compose.project") == PROJECT
        and e["Attributes"].get("com.docker.compose.service") == service
    )


def test_the_topic_step_completes_before_any_scorer_starts(stack: Stack) -> None:
    """The one-shot step created the topics (8 partitions) and exited 0 before the first scorer
    started; no scorer had to create one."""
    topics = _events(stack, "topics")
    scorer_starts = [at for at, what in _events(stack, "scorer") if what == "start"]
    first_exit = next(at for at, what in topics if what == "died")
    assert len(scorer_starts) >= 2 and first_exit < min(scorer_starts), (topics, scorer_starts)
    # podman starts the step again with each service that needs it: every run succeeds.
    (step,) = stack.containers("topics")
    assert step["State"]["ExitCode"] == 0 or step["State"]["Status"] == "running", step["State"]
    step_log = stack.logs("topics")
    assert "Created topic images.incoming." in step_log and "no broker answered" not in step_log
    assert "created topics" not in stack.logs("scorer")
    described = stack.kafka_tool("kafka-topics", "--describe", "--topic", "images.incoming")
    assert described.count("Partition: ") == 8, described


def test_events_through_the_connector_reach_result_topics_shared_by_two_scorers(
    stack: Stack,
) -> None:
    """Every post the Jetstream replica sends comes back once, from the two scorer replicas,
    which split images.incoming's partitions between them."""
    until(lambda: stack.replicas.jetstream.subscriptions, bool, 180, "connector subscription")
    ids = stack.replicas.publish(24)
    stack.published += ids
    results = stack.wait_for_results(ids)
    assert all(results[i] == 1 for i in ids), results
    assert len(stack.containers("scorer")) == 2

    def members() -> dict[str, int]:
        """Partitions of each member of the scorers' group, by consumer id."""
        out = stack.kafka_tool("kafka-consumer-groups", "--describe", "--group",
                               "modstream-scorers", "--members")  # fmt: skip
        rows = [line.split() for line in out.splitlines() if line.startswith("modstream-scorers")]
        return {row[1]: int(row[-1]) for row in rows}

    shares = until(members, lambda m: len(m) == 2, 60, "two group members")
    assert sum(shares.values()) == 8 and all(shares.values()), shares


def _json(request: urllib.request.Request | str, timeout_s: float = 30) -> Any:
    """The JSON answer of a published port, or ``None`` while nothing answers there."""
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return orjson.loads(answer.read())
    except OSError:
        return None


def test_serve_scores_an_image_on_the_published_port(stack: Stack) -> None:
    body = (locations.SAMPLES / "photo-a.jpg").read_bytes()
    request = urllib.request.Request(
        "http://127.0.0.1:8080/v1/score", data=body, headers={"Content-Type": "image/jpeg"}
    )
    answer = until(lambda: _json(request), lambda a: a is not None, 120, "answer from serve")
    assert 0.0 <= answer["nsfw"] < 0.05 and answer["decision"] == "safe", answer


def test_prometheus_scrapes_every_target_up_by_dns_and_loads_the_alert_rules(
    stack: Stack,
) -> None:
    def targets() -> list[dict[str, Any]]:
        found = _json("http://127.0.0.1:9090/api/v1/targets")
        return list(found["data"]["activeTargets"]) if found else []

    def all_up(found: list[dict[str, Any]]) -> bool:
        jobs = Counter(t["labels"]["job"] for t in found)
        wanted = {"modstream": 2, "modstream-connector": 1, "modstream-serve": 1}
        return jobs == wanted and all(t["health"] == "up" for t in found)

    found = until(targets, all_up, 180, "every target up")
    assert {t["labels"]["instance"] for t in found} >= {"connector:9109", "serve:8080"}
    groups = _json("http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    declared = yaml.safe_load((locations.DEPLOY / "alerts.yml").read_text())["groups"][0]["rules"]
    assert loaded == {rule["alert"] for rule in declared}


def test_health_checks_turn_healthy(stack: Stack) -> None:
    """Kafka's check and modstream's (each service's MODSTREAM_HEALTH_URL) all pass."""

    def statuses() -> dict[str, str]:
        return {
            str(c["Name"]).lstrip("/"): c["State"].get("Health", {}).get("Status", "")
            for c in stack.engine.containers(PROJECT)
            if (c.get("Config", {}).get("Healthcheck") or {}).get("Test")
        }

    seen = until(statuses, lambda s: bool(s) and set(s.values()) == {"healthy"}, 240, "healthy")
    checked = {
        service
        for service in ("kafka", "scorer", "connector", "serve")
        for container in stack.containers(service)
        if str(container["Name"]).lstrip("/") in seen
    }
    assert checked == {"kafka", "scorer", "connector", "serve"}, seen


def test_scorers_stopped_by_the_engine_drain_and_commit(stack: Stack) -> None:
    """compose stop (SIGTERM, then the stop_grace_period) in the middle of a batch: both
    scorers finish what they hold, commit it and exit 0; started again, they go on from their
    commits, so every event has exactly one result (a lost commit would replay some)."""
    ids = stack.replicas.publish(40)
    stack.published += ids
    until(stack.results, lambda r: isinstance(r, Counter) and any(i in r for i in ids), 120,
          "a first result")  # fmt: skip
    started = time.monotonic()
    stack.compose("stop", "scorer", timeout_s=120)
    stopped_s = time.monotonic() - started
    for container in stack.containers("scorer"):
        state = container["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 0, state
    logs = stack.logs("scorer")
    assert logs.count("INFO modstream stopped") == 2, logs[-3000:]
    assert "were not finished at shutdown" not in logs
    assert stopped_s < 40, stopped_s
    stack.compose("start", "scorer", timeout_s=300)
    results = stack.wait_for_results(stack.published)
    assert all(results[i] == 1 for i in stack.published), Counter(results.values())


def test_down_then_up_keeps_the_connectors_position_and_loses_no_event(stack: Stack) -> None:
    """compose down (volumes kept), events published while the stack is away, compose up: the
    connector resumes from the cursor in its volume, Kafka from its log, and every event has a
    result."""
    subscriptions = len(stack.replicas.jetstream.subscriptions)
    stack.compose("down", timeout_s=300)
    ids = stack.replicas.publish(12)
    stack.published += ids
    stack.compose("up", "-d", *stack.services, timeout_s=600)
    results = stack.wait_for_results(stack.published)
    assert set(stack.published) <= set(results)
    resumed = stack.replicas.jetstream.subscriptions[subscriptions:]
    assert resumed and resumed[0].cursor is not None, resumed
