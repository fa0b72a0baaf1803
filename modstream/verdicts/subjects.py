"""What a lookup asks about: a post, an image URL or an image's sha256. Pure, no I/O.

A subject is ``{"post": URI}``, ``{"url": URL}`` or ``{"sha256": HEX}``: exactly one field, a
non-empty UTF-8 string of at most :data:`MAX_SUBJECT_BYTES` bytes (a sha256 is 64 hex digits).
Anything else is an :class:`~modstream.errors.InvalidSubject` (400) naming the fault.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from modstream.digests import is_sha256_hex
from modstream.errors import InvalidSubject

__all__ = ["MAX_SUBJECT_BYTES", "Subject", "SubjectKind", "subject_from"]

MAX_SUBJECT_BYTES = 2048


class SubjectKind(enum.StrEnum):
    POST = "post"
    URL = "url"
    SHA256 = "sha256"


@dataclass(frozen=True, slots=True)
class Subject:
    kind: SubjectKind
    value: str  # a sha256 in lower case

    def fields(self) -> dict[str, str]:
        return {self.kind.value: self.value}

    @classmethod
    def of(cls, kind: str, value: object) -> Subject:
        """The subject ``kind=value``, checked."""
        try:
            subject_kind = SubjectKind(kind)
        except ValueError:
            raise InvalidSubject(
                f"unknown subject {kind!r}: a subject is one of post, url, sha256"
            ) from None
        if not isinstance(value, str):
            raise InvalidSubject(f"the {kind} must be a string, got {type(value).__name__}")
        if not value:
            raise InvalidSubject(f"the {kind} is empty")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidSubject(f"the {kind} is not valid UTF-8 (a lone surrogate)") from None
        if size > MAX_SUBJECT_BYTES:
            raise InvalidSubject(
                f"the {kind} is {size} bytes, over the limit of {MAX_SUBJECT_BYTES}"
            )
        if subject_kind is SubjectKind.SHA256:
            if not is_sha256_hex(value):
                raise InvalidSubject("a sha256 is 64 hexadecimal digits")
            value = value.lower()
        return cls(subject_kind, value)


def subject_from(item: Any, *, where: str = "the subject") -> Subject:
    """One subject of a batch body: an object with exactly one of post, url, sha256."""
    if not isinstance(item, dict) or len(item) != 1:
        raise InvalidSubject(
            f"{where} must be an object with exactly one of post, url, sha256, got {_shown(item)}"
        )
    ((kind, value),) = item.items()
    try:
        return Subject.of(kind, value)
    except InvalidSubject as exc:
        raise InvalidSubject(f"{where}: {exc}") from None


def _shown(item: Any) -> str:
    text = repr(item)
    return text if len(text) <= 80 else text[:77] + "..."
