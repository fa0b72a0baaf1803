"""KafkaSettings: validated once, secrets masked, the same options for every client."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.errors import ConfigError
from modstream.kafka.settings import PASSWORD_VARIABLE, KafkaSettings, Secret


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_kafka_options(parser, without="without it the embedded broker is started", embedded=True)
    return parser.parse_args(argv)


def test_the_password_never_shows_in_a_repr() -> None:
    """repr() of the settings (as a log line or a traceback shows it) masks the password."""
    settings = KafkaSettings(
        bootstrap_servers="k1:9093",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="moderator",
        sasl_password=Secret("hunter2"),
    )
    assert "hunter2" not in repr(settings)
    assert "moderator" in repr(settings)
    assert settings.client_options("scorer")["sasl_plain_password"] == "hunter2"


def test_every_client_gets_the_same_connection_options_under_its_own_id() -> None:
    """Only the client id differs between roles; plaintext carries no TLS or SASL options."""
    settings = KafkaSettings(bootstrap_servers="k1:9092,k2:9092", client_id="mod-eu")
    scorer, admin = settings.client_options("scorer"), settings.client_options("admin")
    assert scorer.pop("client_id") == "mod-eu-scorer"
    assert admin.pop("client_id") == "mod-eu-admin"
    plaintext = {"bootstrap_servers": "k1:9092,k2:9092", "security_protocol": "PLAINTEXT"}
    assert scorer == admin == plaintext
    assert settings.hosts == [("k1", 9092), ("k2", 9092)]


def test_tls_settings_build_a_verifying_context() -> None:
    """SSL and SASL_SSL verify the broker's certificate and host name by default."""
    settings = KafkaSettings(bootstrap_servers="k1:9093", security_protocol="SSL")
    context = settings.client_options("scorer")["ssl_context"]
    assert context.check_hostname is True
    assert context.verify_mode.name == "CERT_REQUIRED"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": Secret("p")},
         "--kafka-sasl-mechanism must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_password": Secret("p")},
         "SASL_SSL needs --kafka-sasl-username"),
        ({"sasl_mechanism": "PLAIN"}, "SASL options need --kafka-security-protocol"),
        ({"security_protocol": "TLS"}, "--kafka-security-protocol 'TLS' is not one of"),
        ({"ssl_cafile": Path("/nonexistent/ca.pem")}, "--kafka-ssl-cafile need"),
        ({"security_protocol": "SSL", "ssl_cafile": Path("/nonexistent/ca.pem")},
         "--kafka-ssl-cafile /nonexistent/ca.pem: no such file"),
        ({"bootstrap_servers": "kafka"}, "'kafka' is not HOST:PORT"),
        ({"bootstrap_servers": " , "}, "--bootstrap-servers names no server"),
    ],
)  # fmt: skip
def test_a_setting_that_cannot_work_is_refused_before_any_connection(
    fields: dict[str, object], problem: str
) -> None:
    """Each mistake is a ConfigError naming the flag to fix."""
    values: dict[str, object] = {"bootstrap_servers": "k1:9092", **fields}
    with pytest.raises(ConfigError) as caught:
        KafkaSettings(**values)  # type: ignore[arg-type]
    assert problem in str(caught.value)


def test_a_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("not read until a client is built")
    with pytest.raises(ConfigError, match="--kafka-ssl-certfile and --kafka-ssl-keyfile go"):
        KafkaSettings(bootstrap_servers="k:9093", security_protocol="SSL", ssl_certfile=cert)


def test_the_password_comes_from_the_environment_only() -> None:
    """SASL flags read the password from MODSTREAM_KAFKA_SASL_PASSWORD, or the variable named
    by --kafka-sasl-password-env; without it the run is refused, naming the variable."""
    flags = ("--bootstrap-servers", "k:9094", "--kafka-security-protocol", "SASL_SSL",
             "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "mod")  # fmt: skip
    settings = kafka_settings(_parse(*flags), {PASSWORD_VARIABLE: "s3cret"})
    assert settings is not None and settings.sasl_password == Secret("s3cret")
    renamed = _parse(*flags, "--kafka-sasl-password-env", "KAFKA_PW")
    named = kafka_settings(renamed, {"KAFKA_PW": "x"})
    assert named is not None and named.sasl_password == Secret("x")
    with pytest.raises(ConfigError, match=f"in the environment variable {PASSWORD_VARIABLE}"):
        kafka_settings(_parse(*flags), {})


def test_security_flags_without_a_cluster_are_a_usage_error() -> None:
    """The embedded broker speaks plaintext: a TLS or SASL flag without --bootstrap-servers is
    refused rather than silently ignored."""
    assert kafka_settings(_parse(), {}) is None
    with pytest.raises(
        ConfigError, match="--kafka-security-protocol needs --bootstrap-servers: the embedded"
    ):
        kafka_settings(_parse("--kafka-security-protocol", "SSL"), {})
