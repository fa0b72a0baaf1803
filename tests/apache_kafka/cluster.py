"""Three Apache Kafka nodes in one KRaft cluster, for tests that need replication.

Each node is broker and controller; the three controllers form the quorum, so the cluster keeps
its metadata and elects new partition leaders when one node dies. Topics are created with three
replicas and ``min.insync.replicas=2``, so an acks=all write survives the loss of any one node.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Self

from modstream.kafka.broker import free_loopback_port
from modstream.kafka.settings import KafkaSettings

from . import ApacheKafka, new_cluster_id

__all__ = ["KafkaCluster"]

REPLICATED = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
}


class KafkaCluster:
    def __init__(self, data_dir: Path, classpath: str, *, size: int = 3) -> None:
        controller_ports = {node_id: free_loopback_port() for node_id in range(1, size + 1)}
        voters = ",".join(f"{node}@127.0.0.1:{port}" for node, port in controller_ports.items())
        cluster_id = new_cluster_id()
        self.nodes: dict[int, ApacheKafka] = {}
        for node_id, port in controller_ports.items():
            self.nodes[node_id] = ApacheKafka(
                data_dir / f"node-{node_id}", classpath, config=REPLICATED, heap_mb=384,
                node_id=node_id, controller_port=port, voters=voters, cluster_id=cluster_id,
            )  # fmt: skip

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes.values())

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers)

    async def __aenter__(self) -> Self:
        # Together: a node's broker waits for the controller quorum, which needs the others.
        try:
            await asyncio.gather(*(node.start(timeout_s=120) for node in self.nodes.values()))
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes.values()))
