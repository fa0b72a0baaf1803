"""Which HTTP status each error kind gets (a pure table, tested on its own), and the table of
every kind (:func:`kind_table`) that the OpenAPI document and docs/errors.md are generated from.

4xx: the request or the image it names cannot be scored, and sending it again will not help;
5xx: modstream or the image's host failed, and a later retry may succeed.

``python -m modstream.web.statuses`` prints the kinds as docs/errors.md's table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from modstream import errors
from modstream.errors import (
    AlreadyDecided,
    BadRequest,
    BlockedAddress,
    BlockedPath,
    BodyTooLarge,
    BrokerUnavailable,
    ConnectFailed,
    FetchError,
    FetchTimeout,
    HttpStatusError,
    ImageTooLarge,
    InputError,
    InvalidUrl,
    ModstreamError,
    NotAnImage,
    NotFound,
    Overloaded,
    TooManyRedirects,
    Unauthorized,
    UnknownItem,
    UnsupportedCodec,
    UnsupportedFormat,
)

__all__ = [
    "HTTP_ONLY_KINDS", "RETRY_AFTER_S", "KindRow", "kind_table", "markdown_table", "status_for",
    "status_of",
]  # fmt: skip

RETRY_AFTER_S = 1  # what a 503 asks the client to wait

_STATUSES: tuple[tuple[type[ModstreamError], int], ...] = (
    (BadRequest, 400),
    (Unauthorized, 401),
    (UnknownItem, 404),
    (NotFound, 404),  # no such hash, route or file
    (AlreadyDecided, 409),
    (BodyTooLarge, 413),  # more bytes than the limit, cut off while reading
    (ImageTooLarge, 413),
    (NotAnImage, 415),
    (UnsupportedFormat, 415),
    (UnsupportedCodec, 415),
    (Overloaded, 503),
    (BrokerUnavailable, 503),  # a decision or record could not be stored; retry shortly
    (FetchTimeout, 504),  # the image's host did not answer in time
    (ConnectFailed, 502),
    (HttpStatusError, 502),  # the image's host answered with an error
    (TooManyRedirects, 502),
    (InvalidUrl, 422),  # the URL was refused: the other FetchErrors below are the host's fault
    (BlockedAddress, 422),
    (BlockedPath, 422),
    (FetchError, 502),  # fetch_failed: the host broke the exchange (not HTTP, cut off)
)


def status_for(error: ModstreamError) -> int:
    """The status for ``error``: the table above, else 422 for any other bad input (a broken
    image, a bomb, a refused address), else 500."""
    return status_of(type(error))


# Kinds only the HTTP layer answers with (aiohttp's own refusals): no error class raises them.
HTTP_ONLY_KINDS: dict[str, tuple[int, str]] = {
    "method_not_allowed": (405, "a method the route does not take (the Allow header names it)"),
}


@dataclass(frozen=True, slots=True)
class KindRow:
    """One error kind as the documentation and the OpenAPI document list it."""

    kind: str
    status: int
    retriable: bool
    meaning: str
    error: type[ModstreamError] | None  # None: an HTTP-only kind


def status_of(error: type[ModstreamError]) -> int:
    """The status for an error class: the table above, else 422 for any other bad input (a
    broken image, a bomb, a refused address), else 500."""
    for kind, status in _STATUSES:
        if issubclass(error, kind):
            return status
    return 422 if issubclass(error, InputError) else 500


def kind_table() -> list[KindRow]:
    """Every kind modstream reports, from :mod:`modstream.errors` (in its tree's order; a kind two
    classes share once) and the HTTP-only ones, each with its status and meaning."""
    rows: dict[str, KindRow] = {}
    for error in vars(errors).values():
        if not (isinstance(error, type) and issubclass(error, ModstreamError)):
            continue
        if "kind" not in vars(error) or error.kind in rows:
            continue  # a category (no kind of its own), or a kind already listed
        rows[error.kind] = KindRow(error.kind, status_of(error), error.retriable, error.meaning,
                                   error)  # fmt: skip
    for kind, (status, meaning) in HTTP_ONLY_KINDS.items():
        rows[kind] = KindRow(kind, status, False, meaning, None)
    return list(rows.values())


def markdown_table() -> str:
    """The kinds as the Markdown table of docs/errors.md (``python -m modstream.web.statuses``)."""
    lines = ["| kind | HTTP | retriable | meaning |", "| --- | --- | --- | --- |"]
    for row in kind_table():
        retriable = "yes" if row.retriable else ""
        lines.append(f"| `{row.kind}` | {row.status} | {retriable} | {row.meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_table())
