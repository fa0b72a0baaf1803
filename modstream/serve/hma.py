"""The Hasher-Matcher-Actioner's lookup API, as ``modstream serve`` answers it (pure parts).

Meta's HMA (ThreatExchange's ``hasher-matcher-actioner``, OpenMediaMatch) is what trust-and-safety
tools already speak for known-content matching, so ``serve`` answers its routes with its shapes:

    GET  /m/lookup?signal_type=pdq&signal=HEX[&banks=A,B]   {BANK: [{bank_content_id, distance}]}
    GET  /m/lookup?url=URL[&signal_type=pdq]   the image fetched (guarded), hashed, looked up:
                                               {"pdq": {BANK: [...]}} (the outer level elided
                                               when signal_type is given)
    POST /m/lookup   multipart, one file in a field named by its content type (``photo``), or
                     ?url=: {"pdq": {BANK: [...]}}
    GET  /m/raw_lookup?signal_type=pdq&signal=HEX[&include_distance=true]   {"matches": [...]}
    GET  /h/hash?url=URL, POST /h/hash (multipart ``photo``)   {"pdq": HEX}

Errors are HMA's: ``{"message": ...}`` with its status and wording ("No such SignalType 'x'",
"Either url or both signal and signal_type are required", ...), plus modstream's ``kind``.
Where modstream differs, on purpose: ``bank_content_id`` is the bank entry's id (a bank file's
ID column, a bank topic entry's id: a string, where HMA numbers its own content); ``distance``
is HMA's string; only the ``pdq`` signal type and the ``photo`` content type exist; matches are
every entry within its bank's distance, nearest first, and an image's hash is held to each bank's
``min_quality`` (a bare signal is not: it has no quality).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modstream.errors import BadRequest
from modstream.models.pdq import parse_hex

__all__ = [
    "CONTENT_TYPES",
    "SIGNAL_TYPES",
    "by_bank",
    "check_content_type",
    "check_signal_type",
    "check_types",
    "parse_banks",
    "parse_signal",
    "raw_matches",
    "true_or_false",
]

SIGNAL_TYPES = ("pdq",)
CONTENT_TYPES = ("photo",)

Matches = Mapping[str, list[tuple[str, int]]]  # bank -> (entry id, distance), nearest first


def check_signal_type(name: str) -> str:
    if name not in SIGNAL_TYPES:
        raise BadRequest(f"No such SignalType '{name}'")
    return name


def check_content_type(name: str) -> str:
    if name not in CONTENT_TYPES:
        raise BadRequest(f"no such content_type: '{name}'")
    return name


def check_types(types: str | None) -> None:
    """A URL lookup's ``types`` (comma-separated signal types to hash): pdq, or refused."""
    if types is None:
        return
    names = [name.strip() for name in types.split(",") if name.strip()]
    if not names:
        raise BadRequest("empty signal type selection")
    for name in names:
        if name not in SIGNAL_TYPES:
            raise BadRequest(f"signal type '{name}' doesn't exist or is disabled")


def parse_signal(signal_type: str, signal: str) -> bytes:
    check_signal_type(signal_type)
    try:
        return parse_hex(signal.strip())
    except ValueError as exc:
        raise BadRequest(f"invalid signal: {exc}") from None


def parse_banks(banks: str | None) -> frozenset[str] | None:
    """``banks=A,B``: only these (None: every bank)."""
    if banks is None or not banks.strip():
        return None
    return frozenset(name.strip() for name in banks.split(",") if name.strip())


def true_or_false(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise BadRequest(f"{name}: invalid boolean parameter - prefer true/false")


def by_bank(matches: Matches) -> dict[str, list[dict[str, Any]]]:
    """HMA's lookup shape: bank -> [{bank_content_id, distance}]."""
    return {
        bank: [{"bank_content_id": entry, "distance": str(distance)} for entry, distance in hits]
        for bank, hits in matches.items()
    }


def raw_matches(matches: Matches, *, include_distance: bool) -> dict[str, list[Any]]:
    """HMA's raw lookup shape: every bank's matches in one list, nearest first."""
    hits = sorted((hit for bank_hits in matches.values() for hit in bank_hits),
                  key=lambda hit: hit[1])  # fmt: skip
    if include_distance:
        return {"matches": [{"bank_content_id": entry, "distance": str(distance)}
                            for entry, distance in hits]}  # fmt: skip
    return {"matches": [entry for entry, _distance in hits]}
