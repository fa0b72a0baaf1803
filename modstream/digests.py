"""Content digests as modstream names images by them: a sha256 as 64 hexadecimal digits."""

from __future__ import annotations

import re
from typing import TypeGuard

__all__ = ["is_sha256_hex"]

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def is_sha256_hex(text: object) -> TypeGuard[str]:
    """Is ``text`` a sha256 written as 64 hexadecimal digits (either case)?"""
    return isinstance(text, str) and _SHA256_HEX.fullmatch(text) is not None
