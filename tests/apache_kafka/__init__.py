"""Apache Kafka for the tests: one KRaft node (broker and controller) from Maven Central's jars.

``pom.xml`` pins the release. :func:`kafka_classpath` asks Maven for the classpath once (the jars
stay in Maven's local repository, so later runs resolve nothing) and caches the answer by the
pom's hash. The test session resolves it before its first test, outside every test's timeout;
``python -m apache_kafka --resolve`` does the same as a step of its own (``MODSTREAM_MAVEN_REPO``
names another local repository: an empty one shows a cold start).

:class:`ApacheKafka` formats a data directory and runs ``kafka.Kafka`` on loopback ports;
:meth:`ApacheKafka.stop` and :meth:`ApacheKafka.start` again restart it on the same log, so a test
can take the broker away mid-stream and bring it back with its data.

A machine without Java or Maven skips these tests with one line; with ``MODSTREAM_REQUIRE_KAFKA=1``
(set by CI; read by ``tests/requirements.py``, as every tier's variable is) the same condition fails
instead, so a broken set-up cannot pass unnoticed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from modstream.errors import BrokerUnavailable
from modstream.kafka.broker import free_loopback_port, wait_for_port
from modstream.kafka.settings import KafkaSettings

__all__ = [
    "MAVEN_REPO_VARIABLE",
    "ApacheKafka",
    "KafkaUnavailable",
    "classpath_cache_dir",
    "kafka_classpath",
    "maven_repository",
]

HERE = Path(__file__).resolve().parent
MAIN = "kafka.Kafka"
MAVEN_REPO_VARIABLE = "MODSTREAM_MAVEN_REPO"
# A cold local repository downloads the broker and its dependencies: minutes on a slow network.
RESOLVE_TIMEOUT_S = 900.0
STORAGE_TOOL = "kafka.tools.StorageTool"
ACL_TOOL = "org.apache.kafka.tools.AclCommand"  # kafka-acls.sh


class KafkaUnavailable(RuntimeError):
    """Java or Maven is missing, or Maven could not resolve the broker."""


def classpath_cache_dir() -> Path:
    """Where resolved classpaths are kept, shared by the tests and ``python -m apache_kafka``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modstream-tests"


def maven_repository() -> Path | None:
    """The local repository Maven resolves into: ``MODSTREAM_MAVEN_REPO`` if set (an empty
    folder shows what a machine with a cold Maven cache goes through), else Maven's own."""
    value = os.environ.get(MAVEN_REPO_VARIABLE, "").strip()
    return Path(value).resolve() if value else None


def kafka_classpath(
    cache_dir: Path, *, repository: Path | None = None, timeout_s: float = RESOLVE_TIMEOUT_S
) -> str:
    """The broker's classpath, resolved by Maven on first use and cached by the pom's hash (and
    the local repository's path, when one is named).

    Into an empty local repository Maven downloads some 60 MB of jars, which takes minutes:
    call this before any test starts (the integration conftest does, when the session has
    tests that need the broker), never from inside a test's timeout.
    """
    java, maven = shutil.which("java"), shutil.which("mvn")
    if java is None or maven is None:
        missing = " and ".join(name for name, path in (("java", java), ("mvn", maven)) if not path)
        raise KafkaUnavailable(f"the Apache Kafka tests need {missing} on PATH")
    pom = HERE / "pom.xml"
    key = pom.read_bytes() + (str(repository).encode() if repository is not None else b"")
    digest = hashlib.sha256(key).hexdigest()[:12]
    cached = cache_dir / f"kafka-classpath-{digest}.txt"
    if cached.is_file():
        classpath = cached.read_text().strip()
        if all(Path(jar).is_file() for jar in classpath.split(os.pathsep)):
            return classpath
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cached.with_suffix(f".{os.getpid()}.tmp")
    command = [maven, "-q", "-B", "-f", str(pom), "dependency:build-classpath",
               f"-Dmdep.outputFile={staging}"]  # fmt: skip
    if repository is not None:
        command.append(f"-Dmaven.repo.local={repository}")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise KafkaUnavailable(
            f"Maven did not resolve Apache Kafka within {timeout_s:.0f} s"
        ) from None
    if done.returncode != 0 or not staging.is_file():
        raise KafkaUnavailable(f"Maven could not resolve Apache Kafka: {done.stdout[-1500:]}")
    staging.replace(cached)
    return cached.read_text().strip()


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes), never starting
    with ``-``, which its command line would read as an option."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class ApacheKafka:
    """One KRaft node on loopback. ``config`` adds or overrides broker properties.

    The PLAINTEXT listener is always there (brokers talk to each other on it). ``listeners``
    adds one listener per security protocol named (``SSL``, ``SASL_SSL``, ``SASL_PLAINTEXT``),
    each on a port of its own (:meth:`address`); their TLS and SASL settings go in ``config``.
    ``scram_users`` (name -> password) are written into the log at format time, for both
    SCRAM-SHA-256 and SCRAM-SHA-512, as ``kafka-storage format --add-scram`` does.
    """

    def __init__(
        self,
        data_dir: Path,
        classpath: str,
        *,
        config: dict[str, str] | None = None,
        listeners: Sequence[str] = (),
        scram_users: Mapping[str, str] | None = None,
        heap_mb: int = 512,
        node_id: int = 1,
        controller_port: int | None = None,
        voters: str | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.classpath = classpath
        # Distinct ports: a free port is asked for one at a time, and the system may hand the
        # same one out twice once the probe's socket is closed.
        taken: set[int] = {controller_port} if controller_port else set()

        def distinct_port() -> int:
            while (port := free_loopback_port()) in taken:
                pass
            taken.add(port)
            return port

        self.port = distinct_port()
        self.ports = {"PLAINTEXT": self.port} | {name: distinct_port() for name in listeners}
        self.scram_users = dict(scram_users or {})
        self.node_id = node_id
        self.controller_port = controller_port or distinct_port()
        # A cluster's nodes share the voter list and the cluster id; alone, a node votes for itself.
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id = cluster_id or new_cluster_id()
        self.heap_mb = heap_mb
        self.log_path = data_dir / "broker.log"
        self._properties_path = data_dir / "server.properties"
        self._config = config or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._formatted = False

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the broker is not running")
        return self._process.pid

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def properties(self) -> dict[str, str]:
        advertised = ",".join(f"{name}://{self.address(name)}" for name in self.ports)
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"{advertised},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": advertised,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(f"{name}:{name}" for name in self.ports)
            + ",CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "500",
            "auto.create.topics.enable": "false",  # as in production: a topic is created on purpose
            **self._config,
        }

    def _java(self, main: str, *arguments: str) -> list[str]:
        return [
            "java", f"-Xmx{self.heap_mb}m", f"-Xms{self.heap_mb // 2}m", "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp", self.classpath, main, *arguments,
        ]  # fmt: skip

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self, timeout_s: float = 90.0) -> None:
        """Format the log directory (first start only), start the node, wait for its ports."""
        if self._process is not None and self._process.poll() is None:
            return
        if not self._formatted:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._properties_path.write_text(
                "".join(f"{key}={value}\n" for key, value in self.properties().items())
            )
            await asyncio.to_thread(self._format)
            self._formatted = True
        self._process = self._spawn()
        try:
            # Every listener: Kafka opens its acceptors one after another, so the PLAINTEXT port
            # answering does not mean the SSL or SASL ones already do.
            for port in self.ports.values():
                await wait_for_port("127.0.0.1", port, timeout_s, process=self._process)
        except BrokerUnavailable as exc:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise KafkaUnavailable(f"Apache Kafka did not start ({exc}):\n{tail}") from None

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                self._java(MAIN, str(self._properties_path)),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def _format(self) -> None:
        done = subprocess.run(
            self._java(STORAGE_TOOL, "format", f"--cluster-id={self.cluster_id}", "-c",
                       str(self._properties_path), "--ignore-formatted", *self._scram_arguments()),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise KafkaUnavailable(f"kafka-storage format failed: {done.stdout}{done.stderr}")

    def _scram_arguments(self) -> list[str]:
        return [
            argument
            for name, password in self.scram_users.items()
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
            for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]

    async def acls(self, *arguments: str) -> None:
        """``kafka-acls --bootstrap-server THIS ARGUMENTS...`` (e.g. ``--add --deny-principal``)."""
        done = await asyncio.to_thread(
            subprocess.run,
            self._java(ACL_TOOL, "--bootstrap-server", self.bootstrap_servers, *arguments),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise KafkaUnavailable(f"kafka-acls failed: {done.stdout}{done.stderr}")

    async def stop(self, timeout_s: float = 30.0) -> None:
        """A clean shutdown (SIGTERM), then SIGKILL if it takes longer than ``timeout_s``."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def kill(self) -> None:
        """SIGKILL: the broker dies mid-write, as in a power cut."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.to_thread(process.wait)
