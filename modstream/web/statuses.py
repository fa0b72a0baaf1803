"""Which HTTP status each error kind gets (a pure table, tested on its own).

4xx: the request or the image it names cannot be scored, and sending it again will not help;
5xx: modstream or the image's host failed, and a later retry may succeed.
"""

from __future__ import annotations

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
    Overloaded,
    TooManyRedirects,
    Unauthorized,
    UnknownItem,
    UnsupportedCodec,
    UnsupportedFormat,
)

__all__ = ["RETRY_AFTER_S", "status_for"]

RETRY_AFTER_S = 1  # what a 503 asks the client to wait

_STATUSES: tuple[tuple[type[ModstreamError], int], ...] = (
    (BadRequest, 400),
    (Unauthorized, 401),
    (UnknownItem, 404),
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
    for kind, status in _STATUSES:
        if isinstance(error, kind):
            return status
    return 422 if isinstance(error, InputError) else 500
