"""The one rule for shared secrets: API keys, reviewer tokens and the webhook's secret.

Each must be at least :data:`MIN_SECRET_LENGTH` characters (``openssl rand -hex 16`` gives 32);
a shorter one is refused at start, with one line naming where it came from.
"""

from __future__ import annotations

from pathlib import Path

from modstream.errors import ConfigError

__all__ = ["MIN_SECRET_LENGTH", "read_api_keys", "require_length"]

MIN_SECRET_LENGTH = 16


def require_length(secret: str, where: str, what: str = "the secret") -> None:
    """:class:`ConfigError` naming ``where`` when ``secret`` is shorter than the rule allows."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{where}: {what} is {len(secret)} characters, shorter than {MIN_SECRET_LENGTH} "
            "(make one with: openssl rand -hex 16)"
        )


def read_api_keys(path: Path, flag: str = "--api-key-file") -> frozenset[str]:
    """The keys of an API key file: one per line, ``#`` comments, each 16+ characters."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: {exc.strerror}") from None
    keys: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        key = raw.strip()
        if not key or key.startswith("#"):
            continue
        require_length(key, f"{flag} {path}, line {number}", "the key")
        keys.add(key)
    if not keys:
        raise ConfigError(f"{flag} {path} holds no key")
    return frozenset(keys)
