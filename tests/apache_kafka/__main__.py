"""Run a command beside a throwaway Apache Kafka node: ``python -m apache_kafka CMD ...``.

``{bootstrap}`` in the command becomes the node's address. The node (KRaft, one broker and
controller, from the jars Maven resolves for ``pom.xml``) lives in a temporary directory and is
stopped when the command ends; the exit status is the command's. ``make demo-kafka`` uses it to
run ``modstream demo`` on Apache Kafka. A development tool, like the tests that share it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from . import ApacheKafka, KafkaUnavailable, kafka_classpath


async def _main(command: list[str]) -> int:
    cache = Path.home() / ".cache" / "modstream-dev"
    classpath = kafka_classpath(cache)
    with tempfile.TemporaryDirectory(prefix="modstream-kafka-") as directory:
        async with ApacheKafka(Path(directory), classpath) as kafka:
            print(f"Apache Kafka (KRaft) at {kafka.bootstrap_servers}", file=sys.stderr)
            filled = [part.replace("{bootstrap}", kafka.bootstrap_servers) for part in command]
            process = await asyncio.create_subprocess_exec(*filled)
            return await process.wait()


def main() -> int:
    command = sys.argv[1:]
    if not command:
        print("usage: python -m apache_kafka COMMAND [ARG ...]  ({bootstrap}: the broker)")
        return 2
    try:
        return asyncio.run(_main(command))
    except KafkaUnavailable as exc:
        print(f"cannot start Apache Kafka: {exc}", file=sys.stderr)
        return 1
    except subprocess.SubprocessError as exc:
        print(f"cannot run {command[0]}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
