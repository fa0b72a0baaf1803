"""The Kafka flags shared by the commands that talk to a cluster, read into one
:class:`~modstream.kafka.settings.KafkaSettings`.

What happens without ``--bootstrap-servers`` differs per command, and each ``--help`` says so:
``run`` and ``demo`` start the embedded development broker (plaintext only, on
``--embedded-port`` or a free port); ``results``, ``review`` and ``eval --results kafka:`` start
no broker and need a cluster's address (a running ``modstream run`` on its embedded broker logs
its own). Security flags without ``--bootstrap-servers`` are a usage error rather than silently
ignored.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from modstream.errors import ConfigError
from modstream.kafka.settings import (
    PASSWORD_VARIABLE,
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    KafkaSettings,
)

__all__ = ["add_kafka_options", "embedded_port", "kafka_settings", "port_number"]

_SECURITY_FLAGS = {
    "kafka_security_protocol": "--kafka-security-protocol",
    "kafka_sasl_mechanism": "--kafka-sasl-mechanism",
    "kafka_sasl_username": "--kafka-sasl-username",
    "kafka_ssl_cafile": "--kafka-ssl-cafile",
    "kafka_ssl_certfile": "--kafka-ssl-certfile",
    "kafka_ssl_keyfile": "--kafka-ssl-keyfile",
}


def port_number(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (1-65535)")
    return value


def add_kafka_options(
    parser: argparse.ArgumentParser, *, without: str, embedded: bool = False, required: bool = False
) -> None:
    """The Kafka flags; ``without`` says in ``--help`` what this command does without
    ``--bootstrap-servers``; ``embedded`` adds ``--embedded-port`` (the commands that start the
    embedded broker); ``required`` makes ``--bootstrap-servers`` a required flag."""
    group = parser.add_argument_group("kafka")
    group.add_argument(
        "--bootstrap-servers",
        default=None,
        required=required,
        metavar="HOST:PORT[,...]",
        help=f"Kafka bootstrap servers; {without}",
    )
    if embedded:
        group.add_argument(
            "--embedded-port", type=port_number, default=None, metavar="PORT",
            help="the port of the embedded broker on 127.0.0.1 (default: a free one), so other "
            "commands can reach it with --bootstrap-servers 127.0.0.1:PORT",
        )  # fmt: skip
    parser.set_defaults(kafka_starts_embedded=embedded)
    group.add_argument(
        "--kafka-security-protocol", choices=SECURITY_PROTOCOLS, default=None,
        help="how clients talk to the brokers (default PLAINTEXT)",
    )  # fmt: skip
    group.add_argument("--kafka-sasl-mechanism", choices=SASL_MECHANISMS, default=None)
    group.add_argument("--kafka-sasl-username", default=None, metavar="USER")
    group.add_argument(
        "--kafka-sasl-password-env", default=PASSWORD_VARIABLE, metavar="VARIABLE",
        help=f"environment variable holding the SASL password (default {PASSWORD_VARIABLE}); "
        "there is no flag for the password itself",
    )  # fmt: skip
    group.add_argument(
        "--kafka-ssl-cafile", type=Path, default=None, metavar="PEM",
        help="CA certificates to trust for the brokers (default: the system's)",
    )  # fmt: skip
    group.add_argument(
        "--kafka-ssl-certfile", type=Path, default=None, metavar="PEM",
        help="client certificate, for listeners that require one (with --kafka-ssl-keyfile)",
    )  # fmt: skip
    group.add_argument("--kafka-ssl-keyfile", type=Path, default=None, metavar="PEM")
    group.add_argument(
        "--kafka-client-id", default="modstream", metavar="ID",
        help="prefix of every client id (ID-scorer, ID-connector, ID-admin)",
    )  # fmt: skip
    group.add_argument(
        "--wait-for-broker", type=float, default=0.0, metavar="SECONDS",
        help="at start, keep asking a cluster that does not answer yet for this long, logging "
        "that it waits (default 0: fail at once); for a broker that may start after modstream",
    )  # fmt: skip


def kafka_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> KafkaSettings | None:
    """The settings the flags describe, or ``None`` for the embedded broker."""
    if args.bootstrap_servers is None:
        given = [flag for name, flag in _SECURITY_FLAGS.items() if getattr(args, name) is not None]
        if given:
            needs = f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'}"
            why = ": the embedded development broker speaks plaintext only"
            raise ConfigError(
                f"{needs} --bootstrap-servers{why if args.kafka_starts_embedded else ''}"
            )
        return None
    if getattr(args, "embedded_port", None) is not None:
        raise ConfigError(
            "--embedded-port is for the embedded broker, which is not started with "
            "--bootstrap-servers"
        )
    return KafkaSettings.from_options(
        args.bootstrap_servers,
        security_protocol=args.kafka_security_protocol or "PLAINTEXT",
        sasl_mechanism=args.kafka_sasl_mechanism,
        sasl_username=args.kafka_sasl_username,
        password_variable=args.kafka_sasl_password_env,
        ssl_cafile=args.kafka_ssl_cafile,
        ssl_certfile=args.kafka_ssl_certfile,
        ssl_keyfile=args.kafka_ssl_keyfile,
        client_id=args.kafka_client_id,
        startup_wait_s=args.wait_for_broker,
        environ=os.environ if environ is None else environ,
    )


def embedded_port(args: argparse.Namespace) -> int | None:
    """``--embedded-port``: where the embedded broker listens (``None``: a free port)."""
    port: int | None = getattr(args, "embedded_port", None)
    return port
