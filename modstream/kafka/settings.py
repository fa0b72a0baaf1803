"""How every Kafka client modstream builds reaches the cluster: one frozen settings object.

The scorer's consumer and producer, the connectors' producer, the topic admin and the demo's
watcher all take their connection options from :meth:`KafkaSettings.client_options`, so a TLS
or SASL setting given once applies to all of them. The SASL password never comes from a flag
(flags show up in ``ps`` and shell history): it is read from an environment variable, kept in a
:class:`Secret` whose ``repr`` is masked, and handed to the client only when one is built.

Validation happens here, once, before any connection: a SASL protocol without a mechanism or a
user, a client certificate without its key, a file that does not exist, each is a
:class:`~modstream.errors.ConfigError` naming the flag to fix.
"""

from __future__ import annotations

import enum
import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from modstream.errors import ConfigError

__all__ = [
    "PASSWORD_VARIABLE",
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "Delivery",
    "GroupTimings",
    "KafkaSettings",
    "Secret",
]

SECURITY_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PASSWORD_VARIABLE: Final = "MODSTREAM_KAFKA_SASL_PASSWORD"


class Secret:
    """A string that does not show itself in a ``repr``, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True, slots=True)
class KafkaSettings:
    """Where the cluster is and how to authenticate to it."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: Path | None = None  # None: the system's trusted CAs
    ssl_certfile: Path | None = None  # a client certificate, for listeners that require one
    ssl_keyfile: Path | None = None
    client_id: str = "modstream"
    # At start, how long to keep asking a cluster that does not answer yet (a broker still
    # starting, a name not yet in DNS) before giving up; 0: give up at once.
    startup_wait_s: float = 0.0

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def hosts(self) -> list[tuple[str, int]]:
        """The bootstrap servers as (host, port) pairs, in the order given."""
        return [_host_port(entry) for entry in self.bootstrap_servers.split(",") if entry.strip()]

    def with_servers(self, bootstrap_servers: str) -> KafkaSettings:
        return replace(self, bootstrap_servers=bootstrap_servers)

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (hostname checked) for the TLS protocols, else ``None``."""
        if not self.uses_tls:
            return None
        cafile = str(self.ssl_cafile) if self.ssl_cafile else None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        if self.ssl_certfile is not None:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def client_options(self, role: str) -> dict[str, Any]:
        """Keyword arguments for an aiokafka consumer, producer or admin client.

        ``role`` ends up in the client id (``modstream-scorer``), which is how a broker's logs
        and quotas tell modstream's clients apart.
        """
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": f"{self.client_id}-{role}",
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            assert self.sasl_password is not None  # checked in __post_init__
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.reveal()
        return options

    @classmethod
    def from_options(
        cls,
        bootstrap_servers: str,
        *,
        security_protocol: str = "PLAINTEXT",
        sasl_mechanism: str | None = None,
        sasl_username: str | None = None,
        password_variable: str = PASSWORD_VARIABLE,
        ssl_cafile: Path | None = None,
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
        client_id: str = "modstream",
        startup_wait_s: float = 0.0,
        environ: Mapping[str, str],
    ) -> KafkaSettings:
        """Settings from command-line values, the password taken from ``environ``."""
        password = environ.get(password_variable) if security_protocol.startswith("SASL") else None
        if security_protocol.startswith("SASL") and not password:
            raise ConfigError(
                f"--kafka-security-protocol {security_protocol} needs the SASL password in the "
                f"environment variable {password_variable}"
            )
        return cls(
            bootstrap_servers=bootstrap_servers,
            security_protocol=security_protocol,
            sasl_mechanism=sasl_mechanism,
            sasl_username=sasl_username,
            sasl_password=Secret(password) if password else None,
            ssl_cafile=ssl_cafile,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            client_id=client_id,
            startup_wait_s=startup_wait_s,
        )


def _problems(settings: KafkaSettings) -> list[str]:
    """What is wrong with ``settings``, each as a sentence naming the flag to fix (pure)."""
    problems: list[str] = []
    if not settings.hosts:
        problems.append("--bootstrap-servers names no server")
    if not 0 <= settings.startup_wait_s < math.inf:
        problems.append(f"--wait-for-broker {settings.startup_wait_s:g} is not 0 or more seconds")
    if settings.security_protocol not in SECURITY_PROTOCOLS:
        problems.append(
            f"--kafka-security-protocol {settings.security_protocol!r} is not one of "
            + ", ".join(SECURITY_PROTOCOLS)
        )
    if settings.uses_sasl:
        if settings.sasl_mechanism not in SASL_MECHANISMS:
            problems.append(
                f"--kafka-sasl-mechanism must be one of {', '.join(SASL_MECHANISMS)} with "
                f"{settings.security_protocol}"
            )
        if not settings.sasl_username:
            problems.append(f"{settings.security_protocol} needs --kafka-sasl-username")
        if settings.sasl_password is None:
            problems.append(f"{settings.security_protocol} needs a SASL password")
    elif settings.sasl_mechanism or settings.sasl_username:
        problems.append(
            "SASL options need --kafka-security-protocol SASL_PLAINTEXT or SASL_SSL, "
            f"not {settings.security_protocol}"
        )
    tls_files = {
        "--kafka-ssl-cafile": settings.ssl_cafile,
        "--kafka-ssl-certfile": settings.ssl_certfile,
        "--kafka-ssl-keyfile": settings.ssl_keyfile,
    }
    given = {flag: path for flag, path in tls_files.items() if path is not None}
    if given and not settings.uses_tls:
        problems.append(
            f"{', '.join(given)} need --kafka-security-protocol SSL or SASL_SSL, "
            f"not {settings.security_protocol}"
        )
    problems += [
        f"{flag} {path}: no such file" for flag, path in given.items() if not path.is_file()
    ]
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        problems.append("--kafka-ssl-certfile and --kafka-ssl-keyfile go together")
    return problems


def _host_port(entry: str) -> tuple[str, int]:
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--bootstrap-servers: {entry.strip()!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


@dataclass(frozen=True, kw_only=True, slots=True)
class GroupTimings:
    """How a consumer group member paces itself, in seconds (Kafka's milliseconds inside): one
    object, embedded in every stage's settings that consumes in a group.

    ``rebalance_timeout_s``: how long the group waits for members to rejoin (None: the session
    timeout). aiokafka leaves the group when getmany has not been called for
    ``max_poll_interval_s``; the consume loop polls every ``poll_s``, paused or not, so only a
    stalled event loop can reach it. ``commit_interval_s``: how often finished offsets commit.
    ``final_commit_s``: how long the commit on the way out waits for a broker that is away
    (aiokafka's commit waits for the group's coordinator for ever); what it could not commit is
    replayed, as after a crash. ``transaction_timeout_s``: exactly once, how long a transaction
    may stay open before the coordinator aborts it and fences its producer."""

    session_timeout_s: float = 10.0
    fetch_max_wait_s: float = 0.5
    rebalance_timeout_s: float | None = None
    max_poll_interval_s: float = 300.0
    poll_s: float = 0.05
    commit_interval_s: float = 0.5
    final_commit_s: float = 5.0
    transaction_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if min(self.session_timeout_s, self.poll_s, self.commit_interval_s,
               self.final_commit_s, self.transaction_timeout_s) <= 0:  # fmt: skip
            raise ValueError(
                "session_timeout_s, poll_s, commit_interval_s, final_commit_s and "
                "transaction_timeout_s must be positive"
            )

    def consumer_options(self) -> dict[str, Any]:
        session_ms = _ms(self.session_timeout_s)
        rebalance = self.rebalance_timeout_s
        return {
            "session_timeout_ms": session_ms,
            "heartbeat_interval_ms": max(session_ms // 5, 100),
            "rebalance_timeout_ms": session_ms if rebalance is None else _ms(rebalance),
            "max_poll_interval_ms": _ms(self.max_poll_interval_s),
            "fetch_max_wait_ms": _ms(self.fetch_max_wait_s),
        }


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 1)


class Delivery(enum.StrEnum):
    """How often a consumed record's outputs may appear: ``at-least-once`` (a replay after a
    crash may repeat one; any broker) or ``exactly-once`` (outputs and offsets in one Kafka
    transaction per input partition; Apache Kafka only)."""

    AT_LEAST_ONCE = "at-least-once"
    EXACTLY_ONCE = "exactly-once"
