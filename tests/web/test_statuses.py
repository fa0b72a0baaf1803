"""The HTTP status of every error kind, from the one table both front doors use."""

from __future__ import annotations

import locations
import pytest

from modstream import errors
from modstream.errors import (
    AlreadyDecided,
    BadRequest,
    BlockedAddress,
    BlockedPath,
    BodyTooLarge,
    BrokerAuthFailed,
    BrokerUnavailable,
    ConnectFailed,
    DecompressionBomb,
    DeviceError,
    FetchError,
    FetchTimeout,
    HttpStatusError,
    ImageTooLarge,
    InvalidUrl,
    ModstreamError,
    NotAnImage,
    Overloaded,
    ScorerClosed,
    TruncatedImage,
    Unauthorized,
    UnknownItem,
    UnsupportedFormat,
)
from modstream.web.responses import error_response
from modstream.web.statuses import (
    HTTP_ONLY_KINDS,
    kind_table,
    markdown_table,
    status_for,
    status_of,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest, 400), (Unauthorized, 401), (UnknownItem, 404), (AlreadyDecided, 409),
        (BodyTooLarge, 413), (ImageTooLarge, 413), (NotAnImage, 415), (UnsupportedFormat, 415),
        (DecompressionBomb, 422), (TruncatedImage, 422), (ConnectFailed, 502),
        (Overloaded, 503), (BrokerUnavailable, 503), (FetchTimeout, 504),
        (ScorerClosed, 500), (BrokerAuthFailed, 500), (ModstreamError, 500),
        (FetchError, 502), (InvalidUrl, 422), (BlockedAddress, 422), (BlockedPath, 422),
        (DeviceError, 500),
    ],
)  # fmt: skip
def test_each_error_gets_its_status(error: type[ModstreamError], status: int) -> None:
    """Bad input is 4xx (422 for any image or URL the table does not name), a failing upstream
    5xx (fetch_failed too: the host broke the exchange), modstream's own failures 500."""
    assert status_for(error("x")) == status


def test_an_image_host_answering_with_an_error_is_a_bad_gateway() -> None:
    """Whatever status the image's host gave, the caller gets 502: our request was fine."""
    assert status_for(HttpStatusError("404 from the host", status=404)) == 502


def test_a_503_asks_the_client_to_come_back_and_a_401_names_the_scheme() -> None:
    """Retry-After on 503s, WWW-Authenticate on 401s, and the body is the typed error."""
    busy = error_response(BrokerUnavailable("the broker is away"))
    assert busy.status == 503 and busy.headers["Retry-After"] == "1"
    assert busy.body == b'{"error":{"kind":"broker_unavailable","message":"the broker is away"}}'
    refused = error_response(Unauthorized("who are you"))
    assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_kind_has_a_status_and_a_meaning_and_a_kind_shared_by_two_classes_one_status() -> (
    None
):
    """The table of kinds covers every class that has a kind of its own, each with a sentence;
    two classes that share a kind (too_large) answer the same status."""
    rows = {row.kind: row for row in kind_table()}
    own = [cls for cls in vars(errors).values()
           if isinstance(cls, type) and issubclass(cls, errors.ModstreamError)
           and "kind" in vars(cls)]  # fmt: skip
    assert {cls.kind for cls in own} | set(HTTP_ONLY_KINDS) == set(rows)
    assert all(row.meaning and not row.meaning.endswith(".") for row in rows.values())
    for cls in own:
        assert rows[cls.kind].status == status_of(cls), cls


def test_docs_errors_table_is_the_generated_one() -> None:
    """docs/errors.md carries the table python -m modstream.web.statuses prints: an error kind
    added, renamed or given another status or meaning without regenerating it fails here."""
    text = (locations.REPO / "docs" / "errors.md").read_text()
    begin = text.index("<!-- kinds:")
    block = text[text.index("\n", begin) + 1 : text.index("<!-- /kinds -->")]
    assert block == markdown_table(), "regenerate it: python -m modstream.web.statuses"
