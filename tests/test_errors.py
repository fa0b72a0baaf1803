"""The error kinds are a contract with whoever reads the errors topic, JSON lines and HTTP bodies:
each is pinned here as a literal, so renaming one is a visible change, not a silent one."""

from __future__ import annotations

import inspect
import re

from modstream import errors

KINDS = {
    "ModstreamError": "internal",
    "EmptyImage": "empty",
    "NotAnImage": "not_an_image",
    "UnsupportedFormat": "unsupported_format",
    "TruncatedImage": "truncated",
    "DecompressionBomb": "decompression_bomb",
    "ImageTooLarge": "too_large",
    "DecodeFailed": "decode_failed",
    "UnsupportedCodec": "unsupported_codec",
    "TooLong": "too_long",
    "TooManyFrames": "too_many_frames",
    "DecodeTimeout": "decode_timeout",
    "NotFound": "not_found",
    "FetchError": "fetch_failed",
    "InvalidUrl": "invalid_url",
    "BlockedAddress": "blocked_address",
    "BlockedPath": "blocked_path",
    "FetchTimeout": "fetch_timeout",
    "ConnectFailed": "connect_failed",
    "HttpStatusError": "http_status",
    "TooManyRedirects": "too_many_redirects",
    "BodyTooLarge": "too_large",
    "MalformedRecord": "malformed_record",
    "BadRequest": "bad_request",
    "InvalidSubject": "invalid_subject",
    "TooManySubjects": "too_many_subjects",
    "Overloaded": "overloaded",
    "Unauthorized": "unauthorized",
    "UnknownItem": "unknown_item",
    "AlreadyDecided": "already_decided",
    "ScorerClosed": "scorer_closed",
    "ModelError": "model_error",
    "WeightsNotFound": "weights_not_found",
    "ChecksumMismatch": "checksum_mismatch",
    "DeviceError": "device_error",
    "SourceError": "source_error",
    "SourceUnauthorized": "source_unauthorized",
    "SourceUnavailable": "source_unavailable",
    "ConfigError": "config_error",
    "PortInUse": "port_in_use",
    "InvalidBank": "invalid_bank",
    "BrokerUnavailable": "broker_unavailable",
    "BrokerAuthFailed": "broker_auth_failed",
    "BrokerTlsFailed": "broker_tls_failed",
    "BrokerDenied": "broker_denied",
    "ProducerFenced": "producer_fenced",
    "RecordRefused": "record_refused",
    "RecordTooLarge": "record_too_large",
}
CATEGORIES = {"InputError", "ImageError", "BrokerError"}  # for except clauses; never raised
RETRIABLE = {"FetchTimeout", "ConnectFailed", "Overloaded", "DeviceError", "BrokerUnavailable",
             "SourceUnavailable"}  # fmt: skip


def _classes() -> dict[str, type[errors.ModstreamError]]:
    return {
        name: value
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.ModstreamError)
    }


def test_each_class_has_its_pinned_kind_and_categories_have_none_of_their_own() -> None:
    """Every class that reports errors carries the kind written here; the three categories
    define no kind (they are never raised, so none could reach a reader)."""
    classes = _classes()
    assert set(classes) == set(KINDS) | CATEGORIES
    own = {name: cls.kind for name, cls in classes.items() if "kind" in vars(cls)}
    assert own == KINDS


def test_exactly_the_transient_failures_are_retriable() -> None:
    """Retry code reads ``retriable``: true for timeouts, refused connections, a full scorer, a
    failed device batch and an absent broker, and for nothing else."""
    assert {name for name, cls in _classes().items() if cls.retriable} == RETRIABLE


def test_the_tree_in_the_module_docstring_draws_each_class_with_its_kind() -> None:
    """The docstring's tree is the map readers use: it names every class, with the kind the
    class carries (none for a category)."""
    lines = (errors.__doc__ or "").splitlines()
    drawn = [re.match(r"    [─└├│ ]*(\w+)(?: +kind=(\w+))?", line) for line in lines]
    tree = {match[1]: match[2] or "" for match in drawn if match and match[1] in _classes()}
    assert tree == KINDS | dict.fromkeys(CATEGORIES, "")
