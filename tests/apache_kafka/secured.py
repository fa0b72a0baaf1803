"""An Apache Kafka node with the listeners production clusters use: TLS, SASL over TLS, SASL.

The certificates are made for the test by a throwaway CA (``trustme``): the broker's for
127.0.0.1, and a client certificate for the SSL listener, which requires one (mutual TLS).
SCRAM users are written into the log when it is formatted; the SASL_PLAINTEXT listener also
takes SASL PLAIN, whose users live in the broker's JAAS configuration.

    SSL             TLS, client certificate required
    SASL_SSL        TLS + SCRAM-SHA-256/512
    SASL_PLAINTEXT  SCRAM-SHA-256/512 and PLAIN, no TLS
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

__all__ = ["USER", "Certificates", "make_certificates", "secured_config"]

USER = ("moderator", "correct-horse-battery")
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True, slots=True)
class Certificates:
    ca: Path  # what clients trust
    broker: Path  # the broker's key and chain, PEM (PKCS#8 key, as Kafka wants it)
    client_cert: Path
    client_key: Path
    stranger_ca: Path  # a CA that signed nothing the broker presents


def _pkcs8(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    broker = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("modstream-client")
    paths = Certificates(
        ca=directory / "ca.pem",
        broker=directory / "broker.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        stranger_ca=directory / "stranger-ca.pem",
    )
    ca.cert_pem.write_to_path(str(paths.ca))
    chain = b"".join(blob.bytes() for blob in broker.cert_chain_pems)
    paths.broker.write_bytes(_pkcs8(broker.private_key_pem.bytes()) + chain)
    paths.client_cert.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    paths.client_key.write_bytes(client.private_key_pem.bytes())
    trustme.CA().cert_pem.write_to_path(str(paths.stranger_ca))
    return paths


def secured_config(certificates: Certificates) -> dict[str, str]:
    """Broker properties for the three secured listeners."""
    name, password = USER
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{name}" password="{password}" user_{name}="{password}";'
    )
    return {
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": SCRAM,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": SCRAM,
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": SCRAM,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": SCRAM,
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": plain,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certificates.broker),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certificates.ca),
        "listener.name.ssl.ssl.client.auth": "required",
    }
