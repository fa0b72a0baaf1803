"""Run a command beside a throwaway Apache Kafka node: ``python -m apache_kafka CMD ...``.

``{bootstrap}`` in the command becomes the node's address. The node (KRaft, one broker and
controller, from the jars Maven resolves for ``pom.xml``) lives in a temporary directory and is
stopped when the command ends; the exit status is the command's. ``make demo-kafka`` uses it to
run ``modstream demo`` on Apache Kafka. A development tool, like the tests that share it.

``python -m apache_kafka --resolve`` only resolves the classpath (Maven downloads the jars into
its local repository the first time) and says how long that took: CI runs it as a step before
the tests, so a cold Maven cache costs time there and never a test's timeout.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import ApacheKafka, KafkaUnavailable, classpath_cache_dir, kafka_classpath, maven_repository


def _resolve() -> int:
    started = time.monotonic()
    try:
        classpath = kafka_classpath(classpath_cache_dir(), repository=maven_repository())
    except KafkaUnavailable as exc:
        print(f"cannot resolve Apache Kafka: {exc}", file=sys.stderr)
        return 1
    jars = classpath.split(os.pathsep)
    repository = maven_repository() or "Maven's default local repository"
    print(f"Apache Kafka classpath: {len(jars)} jars in {repository}, "
          f"resolved in {time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
    return 0


async def _main(command: list[str]) -> int:
    classpath = kafka_classpath(classpath_cache_dir(), repository=maven_repository())
    with tempfile.TemporaryDirectory(prefix="modstream-kafka-") as directory:
        async with ApacheKafka(Path(directory), classpath) as kafka:
            print(f"Apache Kafka (KRaft) at {kafka.bootstrap_servers}", file=sys.stderr)
            filled = [part.replace("{bootstrap}", kafka.bootstrap_servers) for part in command]
            process = await asyncio.create_subprocess_exec(*filled)
            return await process.wait()


def main() -> int:
    command = sys.argv[1:]
    if command == ["--resolve"]:
        return _resolve()
    if not command:
        print("usage: python -m apache_kafka COMMAND [ARG ...]  ({bootstrap}: the broker)")
        print("       python -m apache_kafka --resolve  (resolve the jars, nothing else)")
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
