"""The first contact with a Kafka cluster: can modstream reach it, and will it let us in?

aiokafka clients treat every failed connection alike: a refused password, an untrusted
certificate and a broker that is merely down all end as "Unable to bootstrap", and the clients
retry. For a down broker that is right; for wrong credentials it means a process that never
works and never says why. So before any client starts, :func:`check_access` opens one
connection per bootstrap server with the real settings (TLS handshake, SASL exchange, API
versions) and sorts the outcome:

- a SASL refusal (bad password, unknown user, mechanism not enabled) -> :class:`BrokerAuthFailed`;
- a TLS failure (untrusted or mismatched certificate, client certificate required) ->
  :class:`BrokerTlsFailed`;
- nothing answering on any server -> :class:`BrokerUnavailable` (retriable).

The first two stop ``modstream run`` at once with one line naming the cause. The third does too,
unless the settings allow a start-up wait (``--wait-for-broker``): then a cluster that is still
starting is asked again every second until it answers or the time is up, in two log lines
(waiting, answered), so a process started before its broker (a container engine that does not
wait for health checks) neither dies nor spins silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.conn import AIOKafkaConnection, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

from modstream.errors import BrokerAuthFailed, BrokerError, BrokerTlsFailed, BrokerUnavailable
from modstream.kafka.settings import KafkaSettings

__all__ = ["BrokerProbe", "check_access", "describe_failure", "open_connection", "start_client"]

Client = TypeVar("Client", AIOKafkaConsumer, AIOKafkaProducer)

log = logging.getLogger("modstream.kafka")

_SASL_REFUSALS = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    IllegalSaslStateError,
    UnsupportedSaslMechanismError,
)


async def start_client(client: Client) -> Client:
    """Start an aiokafka client; one that fails to start is stopped, so no connection leaks."""
    try:
        await client.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await client.stop()
        raise
    return client


async def stop_client(client: Client) -> None:
    """Stop an aiokafka client, shielded from the caller's cancellation, whatever the broker's
    state. aiokafka's consumer, stopped while its broker is away, lets the CancelledError of its
    own cancelled fetch tasks escape ``stop()``; that one is swallowed here, a cancellation of
    the caller is not."""
    try:
        await asyncio.shield(client.stop())
    except (KafkaError, OSError):
        pass
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def check_access(
    settings: KafkaSettings, *, timeout_s: float = 10.0, wait_s: float | None = None
) -> None:
    """Return once one bootstrap server accepts a connection with ``settings``; raise otherwise.

    A cluster nobody answers for is asked again every second for ``wait_s`` (default: the
    settings' ``startup_wait_s``) before :class:`BrokerUnavailable` is raised; refusals of TLS
    or SASL are raised at once: waiting does not fix them."""
    wait_s = settings.startup_wait_s if wait_s is None else wait_s
    started = time.monotonic()
    waiting = False
    while True:
        try:
            await _answer(settings, timeout_s=timeout_s)
        except BrokerUnavailable as exc:
            waited = time.monotonic() - started
            if waited >= wait_s:
                if waiting:
                    raise BrokerUnavailable(f"{exc}, after waiting {waited:.0f} s") from None
                raise
            if not waiting:
                waiting = True
                log.info("waiting up to %.0f s for the Kafka cluster at %s (%s)", wait_s,
                         settings.bootstrap_servers, exc)  # fmt: skip
            await asyncio.sleep(min(1.0, wait_s - waited))
            continue
        if waiting:
            log.info("the Kafka cluster at %s answered after %.1f s", settings.bootstrap_servers,
                     time.monotonic() - started)  # fmt: skip
        return


async def _answer(settings: KafkaSettings, *, timeout_s: float) -> None:
    """One try of :func:`check_access`: one connection per bootstrap server until one answers."""
    failures: list[str] = []
    for host, port in settings.hosts:
        where = f"{host}:{port}"
        try:
            async with asyncio.timeout(timeout_s):
                connection = await open_connection(settings, host, port, timeout_s=timeout_s)
                try:  # a listener that wants SASL answers ApiVersions, then hangs up here
                    await connection.send(MetadataRequest([]))
                finally:
                    connection.close()
        except _SASL_REFUSALS as exc:
            raise BrokerAuthFailed(
                f"the broker at {where} refused {settings.sasl_mechanism} authentication as "
                f"{settings.sasl_username!r}: {_reason(exc)}"
            ) from exc
        except (TimeoutError, OSError, KafkaError) as exc:
            tls = _tls_failure(exc)
            if tls is not None:
                raise BrokerTlsFailed(
                    f"TLS with the broker at {where} failed: {tls.reason or tls}"
                    f"{_tls_hint(settings, tls)}"
                ) from exc
            failures.append(f"{where}: {_reason(exc)}")
            continue
        return
    raise BrokerUnavailable(
        f"no Kafka broker answered with {settings.security_protocol}: " + "; ".join(failures)
    )


async def open_connection(
    settings: KafkaSettings, host: str, port: int, *, timeout_s: float
) -> AIOKafkaConnection:
    """One connection to one server with the real settings (TLS, SASL, API versions)."""
    connection: AIOKafkaConnection = await create_conn(
        host, port, request_timeout_ms=int(timeout_s * 1000), **_connection_options(settings)
    )
    return connection


def describe_failure(exc: BaseException) -> str:
    """A connection failure in a few words, for a log line."""
    return _reason(exc)


def _connection_options(settings: KafkaSettings) -> dict[str, object]:
    options = settings.client_options("probe")
    del options["bootstrap_servers"]
    return options


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, TimeoutError) or not text:
        # A listener expecting another protocol (TLS, SASL, plaintext) often just goes quiet.
        return f"{type(exc).__name__}: no answer (does the listener speak this protocol?)"
    return text


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind ``exc``, if any: a handshake that fails raises it directly; a broker
    that wants a client certificate (TLS 1.3) says so in an alert after the handshake, which
    aiokafka reports as a closed connection caused by it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__
    return None


def _tls_hint(settings: KafkaSettings, error: ssl.SSLError) -> str:
    alert = str(error.reason)
    if alert.endswith(("ALERT_BAD_CERTIFICATE", "ALERT_CERTIFICATE_REQUIRED")):
        # The broker's alert about *our* certificate: missing, or not one it trusts.
        if settings.ssl_certfile is None:
            return " (the listener requires a client certificate: --kafka-ssl-certfile, -keyfile)"
        return f" (the broker does not accept the client certificate {settings.ssl_certfile})"
    if isinstance(error, ssl.SSLCertVerificationError) and settings.ssl_cafile is None:
        return " (the system's CAs were used; give the cluster's CA with --kafka-ssl-cafile)"
    return ""


class BrokerProbe:
    """Whether the cluster answers now, for a readiness check: :func:`check_access` at most once
    per ``interval_s`` (probes in between get the last answer), with a short timeout."""

    def __init__(
        self, settings: KafkaSettings, *, interval_s: float = 5.0, timeout_s: float = 3.0
    ) -> None:
        self._settings = settings
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._checked_at = -math.inf
        self._problem: str | None = None
        self._lock = asyncio.Lock()

    async def problem(self) -> str | None:
        """``None`` when a broker answered the latest check, else what went wrong."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self._interval_s:
                try:
                    await check_access(self._settings, timeout_s=self._timeout_s, wait_s=0)
                except BrokerError as exc:
                    self._problem = f"{exc.kind}: {exc}"
                else:
                    self._problem = None
                self._checked_at = time.monotonic()
            return self._problem
