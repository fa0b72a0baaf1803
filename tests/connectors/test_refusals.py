"""A source's HTTP answer: which ones a reconnect may get past, and which stop the connector."""

from __future__ import annotations

import pytest

from modstream.connectors.base import refusal_for_status
from modstream.errors import SourceError, SourceUnavailable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_a_client_error_is_for_good(status: int) -> None:
    refusal = refusal_for_status(status, f"HTTP {status}")
    assert type(refusal) is SourceError and not refusal.retriable
    assert str(refusal) == f"HTTP {status}"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_timeout_a_slow_down_or_a_server_error_is_worth_a_reconnect(status: int) -> None:
    refusal = refusal_for_status(status, f"HTTP {status}")
    assert type(refusal) is SourceUnavailable and refusal.retriable
    assert refusal.kind == "source_unavailable"
