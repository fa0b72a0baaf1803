"""Who may post to the upload webhook: the pure check, run on the raw body before parsing.

A caller proves it knows the shared secret (``MODSTREAM_WEBHOOK_SECRET``) either way:

- ``Authorization: Bearer <secret>`` (MinIO's ``auth_token`` sends exactly this), or
- ``X-Modstream-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>``,
  which never puts the secret on the wire.

Both comparisons use :func:`hmac.compare_digest`, so the time taken says nothing about how much of
a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "is_authorized", "signature_for"]

SIGNATURE_HEADER = "X-Modstream-Signature"


def signature_for(secret: bytes, body: bytes) -> str:
    """The ``X-Modstream-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def is_authorized(
    secret: bytes, body: bytes, *, authorization: str | None, signature: str | None
) -> bool:
    """True when either header proves knowledge of ``secret``."""
    if authorization is not None:
        scheme, _space, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(_bytes(token.strip()), secret):
            return True
    if signature is not None:
        expected = signature_for(secret, body).encode()
        if hmac.compare_digest(_bytes(signature.strip().lower()), expected):
            return True
    return False


def _bytes(text: str) -> bytes:
    # Header values may carry any byte; compare_digest refuses non-ASCII str, so compare bytes.
    return text.encode("utf-8", "replace")
