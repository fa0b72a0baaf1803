"""The container engine the deployment tier runs ``deploy/docker-compose.yml`` on, and the images
it builds where no image registry can be reached.

The engine is podman with runc (Debian's packages) and podman-compose (PyPI, a test dependency):
daemonless, so a CI step needs no service started first, and the strictest engine a user may
run the file on (podman before 4.6 ignores ``condition: service_healthy``, and without systemd it
runs no health check by itself), so the stack is shown not to lean on what an engine may skip.
(Debian's Docker engine runs here too, but needs a daemon started and a compose plugin built
from source; it honours more of the file, so it would prove less.) ``containers.conf`` beside
this file picks runc (crun cannot set RLIMIT_NPROC in this sandbox), netavark (container DNS) and
explicit ulimits; every podman call here gets it through ``CONTAINERS_CONF``, so nothing is
written under /etc.

Stand-ins are built under the names the deployment uses, from what these machines reach:

- ``python:3.11-slim`` (the Dockerfile's default ``PYTHON_IMAGE``): a Debian bookworm base made
  by ``debootstrap --variant=minbase``, with Debian's Python 3.11 (``images/python``);
- ``apache/kafka:<release>`` (the compose file's tag, which must be the release of
  ``tests/apache_kafka/pom.xml``): Debian's Java 17 with the Maven Central jars the Apache Kafka
  tests run, started as the official image starts (``images/kafka``);
- ``prom/prometheus:<tag>``: Debian's Prometheus, laid out as the official image (``images/
  prometheus``). Its version is Debian's (2.42), not the tag's; the configuration and rules
  the deployment mounts are checked by this tier and by ``promtool`` in the Prometheus tier.

Grafana cannot be built from these registries: the tier leaves the ``grafana`` service out (its
dashboard is checked against a real Prometheus in ``tests/integration/test_prometheus.py``).

Each stand-in carries a label with the digest of what it was built from and is rebuilt only
when that changes. ``python -m stack --prepare`` installs what is missing and builds everything
as a CI step of its own, so no test's timeout pays for a cold build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from apache_kafka import classpath_cache_dir, kafka_classpath, maven_repository

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
KAFKA_POM = REPO / "tests" / "apache_kafka" / "pom.xml"
BASE_IMAGE = "localhost/modstream-stand-in/debian:bookworm"
DIGEST_LABEL = "io.modstream.stand-in.digest"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Services the tier cannot run here: no registry serves their images and none can be built.
LEFT_OUT = frozenset({"grafana"})

__all__ = [
    "BASE_IMAGE",
    "COMPOSE_FILE",
    "LEFT_OUT",
    "CommandFailed",
    "Engine",
    "EngineUnavailable",
    "compose_images",
    "find_engine",
    "prepare",
]


class EngineUnavailable(RuntimeError):
    """No container engine (or no compose) runs here, or a stand-in image is missing."""


class CommandFailed(RuntimeError):
    """An engine or compose command exited non-zero; the message ends with its output."""


@dataclass(frozen=True, slots=True)
class Engine:
    """One container engine and its compose, with the environment every call needs."""

    command: str
    compose: tuple[str, ...]
    environ: Mapping[str, str]

    def run(
        self, *args: str, timeout_s: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``ENGINE ARGS``; raises with its output on a non-zero status when ``check``."""
        return _run([self.command, *args], self.environ, timeout_s, check)

    def compose_run(
        self, files: Sequence[Path], project: str, *args: str, timeout_s: float = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """``COMPOSE -p PROJECT -f FILE ... ARGS``."""
        chosen = [part for path in files for part in ("-f", str(path))]
        command = [*self.compose, "-p", project, *chosen, *args]
        return _run(command, self.environ, timeout_s, check)

    def image_digest(self, image: str) -> str | None:
        """The stand-in digest label of ``image``; ``None`` when the image is not here."""
        done = self.run("image", "inspect", image, check=False)
        if done.returncode != 0:
            return None
        labels = json.loads(done.stdout)[0].get("Config", {}).get("Labels") or {}
        return str(labels.get(DIGEST_LABEL, ""))

    def containers(self, project: str) -> list[dict[str, Any]]:
        """The project's containers (running or not), each as ``inspect`` describes it."""
        listed = self.run(
            "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"
        ).stdout.split()
        if not listed:
            return []
        details: list[dict[str, Any]] = json.loads(self.run("inspect", *listed).stdout)
        return details


def _run(
    command: list[str], environ: Mapping[str, str], timeout_s: float, check: bool
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, env={**os.environ, **environ}, capture_output=True, timeout=timeout_s,
        check=False,
    )  # fmt: skip
    result = subprocess.CompletedProcess(
        command, done.returncode, done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )  # fmt: skip
    if check and done.returncode != 0:
        raise CommandFailed(
            f"{' '.join(command)} exited {done.returncode}:\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


def find_engine() -> Engine:
    """podman and podman-compose, if both are installed and podman answers."""
    podman = shutil.which("podman")
    compose = Path(sys.executable).with_name("podman-compose")
    if podman is None:
        raise EngineUnavailable("podman is not installed (apt-get install podman runc netavark)")
    if not compose.is_file():
        raise EngineUnavailable("podman-compose is not installed (pip install podman-compose)")
    environ = {"CONTAINERS_CONF": str(HERE / "containers.conf")} | _build_environ()
    engine = Engine(podman, (str(compose),), environ)
    done = engine.run("info", check=False, timeout_s=60)
    if done.returncode != 0:
        raise EngineUnavailable(f"podman info failed: {done.stderr.strip()[-300:]}")
    return engine


def _build_environ() -> dict[str, str]:
    """What compose interpolates into the build: this machine's extra CAs, as a user behind a
    TLS-intercepting proxy passes them (the Dockerfile's ``EXTRA_CA_CERTS``)."""
    return {"EXTRA_CA_CERTS": extra_ca_certs()}


def compose_images() -> dict[str, str]:
    """The image each stand-in is built as, by stand-in: the names the deployment pulls."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    found = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    if found is None:
        raise EngineUnavailable("deploy/Dockerfile names no default PYTHON_IMAGE")
    return {
        "python": _qualified(found.group(1)),
        "kafka": _qualified(services["kafka"]["image"]),
        "prometheus": _qualified(services["prometheus"]["image"]),
    }


def kafka_release() -> str:
    """The Apache Kafka release the tests' pom pins (the jars the Kafka stand-in carries)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text())
    if found is None:
        raise EngineUnavailable(f"{KAFKA_POM} pins no kafka.version")
    return found.group(1)


def _qualified(image: str) -> str:
    """Docker Hub's full name for a short one, as both engines resolve it."""
    name = image if "/" in image else f"library/{image}"
    first = name.split("/", 1)[0]
    return name if "." in first or first == "localhost" else f"docker.io/{name}"


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def _folder_bytes(folder: Path) -> bytes:
    return b"".join(
        path.name.encode() + path.read_bytes()
        for path in sorted(folder.iterdir())
        if path.is_file()
    )


def _say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


def _build(engine: Engine, image: str, context: Path, digest: str, **args: str) -> None:
    build_args = [part for key, value in args.items() for part in ("--build-arg", f"{key}={value}")]
    engine.run(
        "build", "--pull=never", "--label", f"{DIGEST_LABEL}={digest}", "-t", image,
        *build_args, "-f", str(context / "Containerfile"), str(context), timeout_s=1200,
    )  # fmt: skip


def _base(engine: Engine) -> None:
    """The Debian base every stand-in starts from: debootstrap into a folder, then import it."""
    digest = _digest(b"bookworm minbase", DEBIAN_MIRROR.encode())
    if engine.image_digest(BASE_IMAGE) == digest:
        return
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    with tempfile.TemporaryDirectory(prefix="modstream-rootfs-") as rootfs:
        subprocess.run(
            [debootstrap, "--variant=minbase", "bookworm", rootfs, DEBIAN_MIRROR],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        subprocess.run(
            [engine.command, "import", "--change", f"LABEL {DIGEST_LABEL}={digest}", "-",
             BASE_IMAGE], stdin=tar.stdout, env={**os.environ, **engine.environ},
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        tar.stdout.close()
        if tar.wait() != 0:
            raise EngineUnavailable("tar of the Debian base failed")


def _kafka_context(target: Path) -> bytes:
    """The Kafka stand-in's build context: its files and the jars of the tests' pom."""
    classpath = kafka_classpath(classpath_cache_dir(), repository=maven_repository())
    shutil.copytree(HERE / "images" / "kafka", target)
    shutil.copy(REPO / "tests" / "apache_kafka" / "log4j2.properties", target)
    libs = target / "libs"
    libs.mkdir()
    for jar in classpath.split(os.pathsep):
        shutil.copy(jar, libs)
    return "\n".join(sorted(Path(jar).name for jar in classpath.split(os.pathsep))).encode()


def prepare() -> dict[str, float]:
    """Build every stand-in that is missing or out of date, then the modstream image through
    compose itself; the seconds each step took, by step."""
    engine = find_engine()
    images = compose_images()
    release = kafka_release()
    if not images["kafka"].endswith(f":{release}"):
        raise EngineUnavailable(
            f"the compose file runs {images['kafka']}, the tests Apache Kafka {release}: "
            "use one release"
        )
    took: dict[str, float] = {}
    started = time.monotonic()
    _base(engine)
    took["debian base"] = time.monotonic() - started
    base_digest = engine.image_digest(BASE_IMAGE) or ""
    for name in ("python", "prometheus", "kafka"):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"modstream-{name}-") as folder:
            context = Path(folder) / "context"
            if name == "kafka":
                jars = _kafka_context(context)
            else:
                shutil.copytree(HERE / "images" / name, context)
                jars = b""
            digest = _digest(base_digest.encode(), _folder_bytes(context), jars)
            if engine.image_digest(images[name]) != digest:
                _say(f"building {images[name]} (stand-in)")
                _build(engine, images[name], context, digest, BASE=BASE_IMAGE)
        took[images[name]] = time.monotonic() - started
    started = time.monotonic()
    _say("building the modstream image with compose")
    engine.compose_run([COMPOSE_FILE], "modstream-build", "build", _built(), timeout_s=1800)
    took["modstream image"] = time.monotonic() - started
    return took


def extra_ca_certs() -> str:
    """The certificates this machine trusts beyond Debian's (``/usr/local/share/ca-certificates``,
    where a TLS-intercepting proxy's CA goes), for the Dockerfile's ``EXTRA_CA_CERTS``."""
    folder = Path("/usr/local/share/ca-certificates")
    if not folder.is_dir():
        return ""
    return "".join(path.read_text() for path in sorted(folder.rglob("*.crt")))


def _built() -> str:
    """The first service compose builds (one is enough: they all run the one image)."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return next(name for name, service in services.items() if "build" in service)
