"""The Kafka flags shared by ``modstream run`` and ``modstream demo``, read into one
:class:`~modstream.kafka.settings.KafkaSettings`.

Without ``--bootstrap-servers`` the embedded development broker is started, which speaks only
plaintext; security flags without it are a usage error rather than silently ignored.
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

__all__ = ["add_kafka_options", "kafka_settings"]

_SECURITY_FLAGS = {
    "kafka_security_protocol": "--kafka-security-protocol",
    "kafka_sasl_mechanism": "--kafka-sasl-mechanism",
    "kafka_sasl_username": "--kafka-sasl-username",
    "kafka_ssl_cafile": "--kafka-ssl-cafile",
    "kafka_ssl_certfile": "--kafka-ssl-certfile",
    "kafka_ssl_keyfile": "--kafka-ssl-keyfile",
}


def add_kafka_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("kafka")
    group.add_argument(
        "--bootstrap-servers",
        default=None,
        metavar="HOST:PORT[,...]",
        help="Kafka bootstrap servers; without it an embedded development broker is started",
    )
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


def kafka_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> KafkaSettings | None:
    """The settings the flags describe, or ``None`` for the embedded broker."""
    if args.bootstrap_servers is None:
        given = [flag for name, flag in _SECURITY_FLAGS.items() if getattr(args, name) is not None]
        if given:
            raise ConfigError(
                f"{', '.join(given)} need --bootstrap-servers: the embedded development broker "
                "speaks plaintext only"
            )
        return None
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
        environ=os.environ if environ is None else environ,
    )
