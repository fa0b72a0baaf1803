"""Who may judge: ``--reviewers-file`` holds one ``name:token`` per line (``#`` comments).

A request carries ``Authorization: Bearer <token>``; the token is compared with every known token
in constant time, whichever matches, and the reviewer's name goes into each decision.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from modstream.errors import ConfigError, Unauthorized
from modstream.web.secrets import require_length

__all__ = ["Reviewers", "read_reviewers"]


class Reviewers:
    def __init__(self, tokens: Mapping[str, str]) -> None:
        """``tokens``: token -> reviewer name."""
        if not tokens:
            raise ConfigError("no reviewers: the reviewers file has no name:token line")
        self._tokens = [(token.encode(), name) for token, name in tokens.items()]

    def __len__(self) -> int:
        return len(self._tokens)

    def identify(self, authorization: str | None) -> str:
        """The reviewer named by an ``Authorization`` header; :class:`Unauthorized` otherwise."""
        scheme, _, given = (authorization or "").partition(" ")
        presented = given.strip().encode() if scheme.lower() == "bearer" else b""
        found = None
        for token, name in self._tokens:  # every comparison runs, match or not
            if hmac.compare_digest(presented, token):
                found = name
        if found is None:
            raise Unauthorized("a reviewer token is required: 'Authorization: Bearer TOKEN'")
        return found


def read_reviewers(path: Path) -> Reviewers:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"--reviewers-file {path}: {exc.strerror}") from None
    tokens: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = line.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not name or not token:
            raise ConfigError(f"--reviewers-file {path}, line {number}: expected name:token")
        require_length(token, f"--reviewers-file {path}, line {number}", f"{name}'s token")
        if token in tokens:
            raise ConfigError(f"--reviewers-file {path}, line {number}: a token is used twice")
        tokens[token] = name
    return Reviewers(tokens)
