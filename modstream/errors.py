"""Every error modstream reports, with a stable ``kind`` for topics, JSON lines and HTTP bodies.

Foreign exceptions (PIL, aiohttp, OpenVINO, aiokafka) are mapped to the most specific class here at
the boundary where they occur, with ``raise ... from exc``. Code that decides whether to retry reads
the ``retriable`` class attribute; code that reports an error writes ``kind`` and ``str(error)``.
Classes drawn without a kind are categories for ``except`` and the HTTP status table: nothing
raises them, and they have no kind of their own. ``internal`` is what the last-resort handlers
report for an exception no code mapped.

    ModstreamError                     kind=internal
    ├── InputError                     one input is bad; record it and keep going
    │   ├── ImageError
    │   │   ├── EmptyImage             kind=empty
    │   │   ├── NotAnImage             kind=not_an_image
    │   │   ├── UnsupportedFormat      kind=unsupported_format
    │   │   ├── TruncatedImage         kind=truncated
    │   │   ├── DecompressionBomb      kind=decompression_bomb
    │   │   ├── ImageTooLarge          kind=too_large
    │   │   ├── DecodeFailed           kind=decode_failed
    │   │   ├── UnsupportedCodec       kind=unsupported_codec   (a video or animation codec)
    │   │   ├── TooLong                kind=too_long            (a video above the duration cap)
    │   │   ├── TooManyFrames          kind=too_many_frames     (an animation above the caps)
    │   │   └── DecodeTimeout          kind=decode_timeout      (decoding took too long)
    │   ├── NotFound                   kind=not_found
    │   ├── FetchError                 kind=fetch_failed        (the host broke the exchange)
    │   │   ├── InvalidUrl             kind=invalid_url
    │   │   ├── BlockedAddress         kind=blocked_address
    │   │   ├── BlockedPath            kind=blocked_path
    │   │   ├── FetchTimeout           kind=fetch_timeout       (retriable)
    │   │   ├── ConnectFailed          kind=connect_failed      (retriable)
    │   │   ├── HttpStatusError        kind=http_status
    │   │   ├── TooManyRedirects       kind=too_many_redirects
    │   │   └── BodyTooLarge           kind=too_large
    │   ├── MalformedRecord            kind=malformed_record
    │   └── BadRequest                 kind=bad_request         (an HTTP request we cannot read)
    ├── Overloaded                     kind=overloaded          (retriable)
    ├── Unauthorized                   kind=unauthorized        (no or a wrong API key)
    ├── UnknownItem                    kind=unknown_item        (no review item with that id)
    ├── AlreadyDecided                 kind=already_decided     (a review item judged before)
    ├── ScorerClosed                   kind=scorer_closed
    ├── ModelError                     kind=model_error
    │   ├── WeightsNotFound            kind=weights_not_found
    │   └── ChecksumMismatch           kind=checksum_mismatch
    ├── DeviceError                    kind=device_error        (retriable)
    ├── SourceError                    kind=source_error
    │   ├── SourceUnauthorized         kind=source_unauthorized
    │   └── SourceUnavailable          kind=source_unavailable  (retriable: reconnect)
    ├── RecordRefused                  kind=record_refused      (the broker refused one record)
    │   └── RecordTooLarge             kind=record_too_large
    └── ConfigError                    kind=config_error
        ├── PortInUse                  kind=port_in_use
        ├── InvalidBank                kind=invalid_bank        (a hash bank file or entry)
        └── BrokerError
            ├── BrokerUnavailable      kind=broker_unavailable  (retriable)
            ├── BrokerAuthFailed       kind=broker_auth_failed
            ├── BrokerTlsFailed        kind=broker_tls_failed
            └── BrokerDenied           kind=broker_denied       (an ACL refuses an operation)
"""

from __future__ import annotations

from typing import ClassVar


class ModstreamError(Exception):
    """Base class: carries a stable machine-readable ``kind`` and a human message."""

    kind: ClassVar[str] = "internal"
    retriable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str | int]:
        return {"kind": self.kind, "message": self.message}


class InputError(ModstreamError):
    """One input (an image, a URL, a record) cannot be scored; others are unaffected."""


class ImageError(InputError):
    """The bytes are not an image modstream decodes (a category: its subclasses say why)."""


class EmptyImage(ImageError):
    kind = "empty"


class NotAnImage(ImageError):
    kind = "not_an_image"


class UnsupportedFormat(ImageError):
    kind = "unsupported_format"


class TruncatedImage(ImageError):
    kind = "truncated"


class DecompressionBomb(ImageError):
    kind = "decompression_bomb"


class ImageTooLarge(ImageError):
    kind = "too_large"


class DecodeFailed(ImageError):
    kind = "decode_failed"


class UnsupportedCodec(ImageError):
    """A video whose container or codec is outside the allow-list."""

    kind = "unsupported_codec"


class TooLong(ImageError):
    """A video longer than the duration cap (as its container claims it)."""

    kind = "too_long"


class TooManyFrames(ImageError):
    """An animation with more frames, or more decoded pixels in all, than the caps allow."""

    kind = "too_many_frames"


class DecodeTimeout(ImageError):
    """Decoding one item took longer than its time budget."""

    kind = "decode_timeout"


class NotFound(InputError):
    """A local input (a file given to ``modstream score``) does not exist or cannot be read."""

    kind = "not_found"


class FetchError(InputError):
    """Fetching an image failed; ``attempts`` says how many requests were made (retries)."""

    kind = "fetch_failed"
    attempts: int = 1

    def to_dict(self) -> dict[str, str | int]:
        return {**super().to_dict(), "attempts": self.attempts}


class InvalidUrl(FetchError):
    kind = "invalid_url"


class BlockedAddress(FetchError):
    kind = "blocked_address"


class FetchTimeout(FetchError):
    kind = "fetch_timeout"
    retriable = True


class ConnectFailed(FetchError):
    kind = "connect_failed"
    retriable = True


class HttpStatusError(FetchError):
    kind = "http_status"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BlockedPath(FetchError):
    """A ``file:`` URL outside the allowed root (``../``, a symlink out of it), or files are off."""

    kind = "blocked_path"


class TooManyRedirects(FetchError):
    kind = "too_many_redirects"


class BodyTooLarge(FetchError):
    kind = "too_large"


class MalformedRecord(InputError):
    kind = "malformed_record"


class BadRequest(InputError):
    """An API request that names no image: bad JSON, no ``url``, no ``image`` field."""

    kind = "bad_request"


class Unauthorized(ModstreamError):
    kind = "unauthorized"


class UnknownItem(ModstreamError):
    """No item with this id is waiting in the review queue (never seen, or its partition moved)."""

    kind = "unknown_item"


class AlreadyDecided(ModstreamError):
    """The review item has a decision already (or one is being recorded)."""

    kind = "already_decided"


class Overloaded(ModstreamError):
    """The scorer's queue is full; the caller should back off and retry."""

    kind = "overloaded"
    retriable = True


class ScorerClosed(ModstreamError):
    kind = "scorer_closed"


class ModelError(ModstreamError):
    kind = "model_error"


class WeightsNotFound(ModelError):
    kind = "weights_not_found"


class ChecksumMismatch(ModelError):
    kind = "checksum_mismatch"


class DeviceError(ModstreamError):
    """An inference device failed to compile the model or to run a batch."""

    kind = "device_error"
    retriable = True


class SourceError(ModstreamError):
    """A connector's source failed in a way a reconnect cannot mend; it stops the run."""

    kind = "source_error"


class SourceUnauthorized(SourceError):
    kind = "source_unauthorized"


class SourceUnavailable(SourceError):
    """The source is away or cut the stream short (a 5xx, a 408 or 429, a dropped connection):
    the connector reconnects with backoff."""

    kind = "source_unavailable"
    retriable = True


class RecordRefused(ModstreamError):
    """The broker refused one record for good (sending it again cannot help): its answer goes to
    the errors topic instead, and the stream moves on."""

    kind = "record_refused"


class RecordTooLarge(RecordRefused):
    """A record over its topic's limit: the producer's ``max_request_size`` or the topic's
    ``max.message.bytes``. ``size`` and ``limit`` are in bytes (``limit`` 0: not known)."""

    kind = "record_too_large"

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit

    def to_dict(self) -> dict[str, str | int]:
        return {**super().to_dict(), "size": self.size, "limit": self.limit}


class ConfigError(ModstreamError):
    kind = "config_error"


class InvalidBank(ConfigError):
    """A hash bank cannot be read: the message names the file (or record), the line and what is
    wrong. At start-up it stops the process; on a reload the last good bank stays in force."""

    kind = "invalid_bank"


class PortInUse(ConfigError):
    """A server could not bind its port; the message names the port and the flag that sets it."""

    kind = "port_in_use"


class BrokerError(ConfigError):
    """Modstream cannot use the Kafka cluster it was pointed at (a category: its subclasses say
    why)."""


class BrokerUnavailable(BrokerError):
    """No bootstrap server answered (down, a wrong address, a listener of another protocol)."""

    kind = "broker_unavailable"
    retriable = True


class BrokerAuthFailed(BrokerError):
    """The broker refused our SASL credentials or mechanism: retrying cannot help."""

    kind = "broker_auth_failed"


class BrokerTlsFailed(BrokerError):
    """The TLS handshake failed (an untrusted or mismatched certificate, or no client certificate
    where the listener requires one): retrying cannot help."""

    kind = "broker_tls_failed"


class BrokerDenied(BrokerError):
    """The cluster's ACLs refuse an operation modstream needs (writing a result topic, reading
    the incoming one, joining the group): retrying cannot help, so the process stops."""

    kind = "broker_denied"
