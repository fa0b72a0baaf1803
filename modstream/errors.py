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
    │       ├── InvalidSubject         kind=invalid_subject     (a verdict lookup's subject)
    │       └── TooManySubjects        kind=too_many_subjects   (a verdict batch over its cap)
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
            ├── BrokerDenied           kind=broker_denied       (an ACL refuses an operation)
            └── ProducerFenced         kind=producer_fenced     (another member owns the input)
"""

from __future__ import annotations

from typing import ClassVar


class ModstreamError(Exception):
    """Base class: carries a stable machine-readable ``kind`` and a human message."""

    kind: ClassVar[str] = "internal"
    retriable: ClassVar[bool] = False
    # One line for the table of kinds (docs/errors.md, the OpenAPI document): what it means.
    meaning: ClassVar[str] = (
        "a failure no code expected (a bug): the record still gets its one output, and the "
        "process keeps going"
    )

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
    meaning = "a zero-byte body"


class NotAnImage(ImageError):
    kind = "not_an_image"
    meaning = "garbage, HTML, JSON or other bytes that are no image or video"


class UnsupportedFormat(ImageError):
    kind = "unsupported_format"
    meaning = "an SVG, HEIC or another format modstream does not decode"


class TruncatedImage(ImageError):
    kind = "truncated"
    meaning = "the image or video data ends early"


class DecompressionBomb(ImageError):
    kind = "decompression_bomb"
    meaning = (
        "more pixels than --max-megapixels (a video frame above 3840x2160), refused from the header"
    )


class ImageTooLarge(ImageError):
    kind = "too_large"
    meaning = "more bytes than --max-image-mb (a body or a fetched image, cut off at the limit)"


class DecodeFailed(ImageError):
    kind = "decode_failed"
    meaning = "any other decoder failure"


class UnsupportedCodec(ImageError):
    """A video whose container or codec is outside the allow-list."""

    kind = "unsupported_codec"
    meaning = "a video container or codec outside the allow-list"


class TooLong(ImageError):
    """A video longer than the duration cap (as its container claims it)."""

    kind = "too_long"
    meaning = "a video longer than --max-video-s, refused before decoding"


class TooManyFrames(ImageError):
    """An animation with more frames, or more decoded pixels in all, than the caps allow."""

    kind = "too_many_frames"
    meaning = "an animation with more frames or decoded pixels than the caps"


class DecodeTimeout(ImageError):
    """Decoding one item took longer than its time budget."""

    kind = "decode_timeout"
    meaning = "decoding one animation or video took longer than its budget (10 s)"


class NotFound(InputError):
    """A local input (a file given to ``modstream score``) does not exist or cannot be read."""

    kind = "not_found"
    meaning = (
        "no such file (or a folder where a file was named), or over HTTP an unknown route or hash"
    )


class FetchError(InputError):
    """Fetching an image failed; ``attempts`` says how many requests were made (retries)."""

    kind = "fetch_failed"
    meaning = "the image's host broke the exchange: not HTTP, or cut off"
    attempts: int = 1

    def to_dict(self) -> dict[str, str | int]:
        return {**super().to_dict(), "attempts": self.attempts}


class InvalidUrl(FetchError):
    kind = "invalid_url"
    meaning = "not an http(s) URL (or file: without --allow-file-root), or no URL at all"


class BlockedAddress(FetchError):
    kind = "blocked_address"
    meaning = (
        "the host resolves to a loopback, private, link-local, multicast or reserved address "
        "(checked at every redirect, the message naming the --allow-cidr that would allow it)"
    )


class FetchTimeout(FetchError):
    kind = "fetch_timeout"
    meaning = "no complete response within --fetch-timeout, retries included"
    retriable = True


class ConnectFailed(FetchError):
    kind = "connect_failed"
    meaning = "DNS or TCP failure, on every attempt"
    retriable = True


class HttpStatusError(FetchError):
    kind = "http_status"
    meaning = "the image's host answered 4xx or 5xx"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BlockedPath(FetchError):
    """A ``file:`` URL outside the allowed root (``../``, a symlink out of it), or files are off."""

    kind = "blocked_path"
    meaning = "a file: URL outside --allow-file-root (../, a symlink out of it)"


class TooManyRedirects(FetchError):
    kind = "too_many_redirects"
    meaning = "more than 5 redirects"


class BodyTooLarge(FetchError):
    kind = "too_large"
    meaning = "more bytes than --max-image-mb (a body or a fetched image, cut off at the limit)"


class MalformedRecord(InputError):
    kind = "malformed_record"
    meaning = "an incoming record that is not JSON, not an object, or has no url"


class BadRequest(InputError):
    """An API request that names no image: bad JSON, no ``url``, no ``image`` field."""

    kind = "bad_request"
    meaning = (
        "an HTTP request that names no image: bad JSON, no url, no image field, a malformed hash"
    )


class InvalidSubject(BadRequest):
    kind = "invalid_subject"
    meaning = (
        "a verdict lookup's subject that is not one of post, url, sha256, or is empty, over "
        "2048 bytes, not UTF-8, or a sha256 that is not 64 hex digits"
    )


class TooManySubjects(BadRequest):
    kind = "too_many_subjects"
    meaning = "a batch verdict lookup with more subjects than its cap (500)"


class Unauthorized(ModstreamError):
    kind = "unauthorized"
    meaning = "no API key or reviewer token, or one that is not valid"


class UnknownItem(ModstreamError):
    """No item with this id is waiting in the review queue (never seen, or its partition moved)."""

    kind = "unknown_item"
    meaning = "no review item with that id is waiting (never seen, or its partition moved)"


class AlreadyDecided(ModstreamError):
    """The review item has a decision already (or one is being recorded)."""

    kind = "already_decided"
    meaning = "the review item has a decision already"


class Overloaded(ModstreamError):
    """The scorer's queue is full; the caller should back off and retry."""

    kind = "overloaded"
    meaning = "no scoring slot free within the admission timeout (503 with Retry-After)"
    retriable = True


class ScorerClosed(ModstreamError):
    kind = "scorer_closed"
    meaning = "the scorer is shutting down"


class ModelError(ModstreamError):
    kind = "model_error"
    meaning = "the model did not load (the process stops)"


class WeightsNotFound(ModelError):
    kind = "weights_not_found"
    meaning = "the weights file is missing (the process stops)"


class ChecksumMismatch(ModelError):
    kind = "checksum_mismatch"
    meaning = "the weights file is not the pinned one (the process stops)"


class DeviceError(ModstreamError):
    """An inference device failed to compile the model or to run a batch."""

    kind = "device_error"
    meaning = "an inference device failed to compile the model or to run a batch"
    retriable = True


class SourceError(ModstreamError):
    """A connector's source failed in a way a reconnect cannot mend; it stops the run."""

    kind = "source_error"
    meaning = (
        "a source refused in a way a reconnect cannot mend (a 4xx other than 408 and 429), and "
        "the run stops"
    )


class SourceUnauthorized(SourceError):
    kind = "source_unauthorized"
    meaning = "a source refused the token (401, 403), and the run stops"


class SourceUnavailable(SourceError):
    """The source is away or cut the stream short (a 5xx, a 408 or 429, a dropped connection):
    the connector reconnects with backoff."""

    kind = "source_unavailable"
    meaning = (
        "a source is away or cut its stream (5xx, 408, 429, a dropped connection): the connector "
        "reconnects"
    )
    retriable = True


class RecordRefused(ModstreamError):
    """The broker refused one record for good (sending it again cannot help): its answer goes to
    the errors topic instead, and the stream moves on."""

    kind = "record_refused"
    meaning = "the broker refused one record for good (invalid): an error record answers it"


class RecordTooLarge(RecordRefused):
    """A record over its topic's limit: the producer's ``max_request_size`` or the topic's
    ``max.message.bytes``. ``size`` and ``limit`` are in bytes (``limit`` 0: not known)."""

    kind = "record_too_large"
    meaning = (
        "a result over its topic's limit (the producer's 1 MiB or max.message.bytes): an error "
        "record with size and limit answers it"
    )

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit

    def to_dict(self) -> dict[str, str | int]:
        return {**super().to_dict(), "size": self.size, "limit": self.limit}


class ConfigError(ModstreamError):
    kind = "config_error"
    meaning = "a flag, a file or a setting that cannot work: the process does not start"


class InvalidBank(ConfigError):
    """A hash bank cannot be read: the message names the file (or record), the line and what is
    wrong. At start-up it stops the process; on a reload the last good bank stays in force."""

    kind = "invalid_bank"
    meaning = "a hash bank file or bank record that cannot be read (file, line and problem named)"


class PortInUse(ConfigError):
    """A server could not bind its port; the message names the port and the flag that sets it."""

    kind = "port_in_use"
    meaning = "a server could not bind its port (the message names the flag)"


class BrokerError(ConfigError):
    """Modstream cannot use the Kafka cluster it was pointed at (a category: its subclasses say
    why)."""


class BrokerUnavailable(BrokerError):
    """No bootstrap server answered (down, a wrong address, a listener of another protocol)."""

    kind = "broker_unavailable"
    meaning = "no Kafka bootstrap server answered"
    retriable = True


class BrokerAuthFailed(BrokerError):
    """The broker refused our SASL credentials or mechanism: retrying cannot help."""

    kind = "broker_auth_failed"
    meaning = "the broker refused the SASL credentials or mechanism"


class BrokerTlsFailed(BrokerError):
    """The TLS handshake failed (an untrusted or mismatched certificate, or no client certificate
    where the listener requires one): retrying cannot help."""

    kind = "broker_tls_failed"
    meaning = "the TLS handshake with the broker failed (certificate, CA, client certificate)"


class BrokerDenied(BrokerError):
    """The cluster's ACLs refuse an operation modstream needs (writing a result topic, reading
    the incoming one, joining the group): retrying cannot help, so the process stops."""

    kind = "broker_denied"
    meaning = (
        "the cluster's ACLs refuse an operation modstream needs (writing a result topic): the "
        "process stops"
    )


class ProducerFenced(BrokerError):
    """Exactly once: a newer producer took this input partition's transactional id (its partition
    moved while this process was stalled, a zombie). Nothing more may be committed from here, so
    the process stops; the new owner answers the partition's records once."""

    kind = "producer_fenced"
    meaning = (
        "exactly once: another member took over an input partition's transactions (this one "
        "stalled while its partitions moved); the process stops, the new owner answers the records"
    )
