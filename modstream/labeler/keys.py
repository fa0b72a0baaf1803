"""The labeler's signing key: secp256k1 (what Ozone uses), as atproto's cryptography spec has it.

A signature is ECDSA over the SHA-256 of the signed bytes, as 64 bytes ``r || s`` with ``s`` in
its low half (atproto refuses the high-S twin of a signature, which would make labels
malleable). The public key is published as a ``did:key``: multibase base58btc (``z``) of the
multicodec prefix for a secp256k1 public key (``0xe7 0x01``) and the 33-byte compressed point;
that is the ``#atproto_label`` verification method of the labeler's DID document.

The private key is 32 bytes written as 64 hex characters; it comes from the environment
(``MODSTREAM_LABELER_KEY``), never from a flag, and its ``repr`` does not show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from modstream.errors import ConfigError

__all__ = ["SECP256K1_ORDER", "SigningKey", "base58btc"]

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_MULTICODEC = b"\xe7\x01"
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58btc(data: bytes) -> str:
    """Bitcoin's base58 alphabet, leading zero bytes as '1's (multibase ``z`` without the z)."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_BASE58[remainder])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


@dataclass(frozen=True, slots=True)
class SigningKey:
    _key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256K1()))

    @classmethod
    def from_hex(cls, text: str) -> SigningKey:
        """A key from its 64 hex characters; :class:`ConfigError` says what is wrong (never
        the key)."""
        try:
            secret = bytes.fromhex(text.strip())
        except ValueError:
            raise ConfigError("the labeler key must be 64 hexadecimal characters") from None
        if len(secret) != 32:
            raise ConfigError(f"the labeler key must be 32 bytes (64 hex), not {len(secret)}")
        value = int.from_bytes(secret, "big")
        if not 0 < value < SECP256K1_ORDER:
            raise ConfigError("the labeler key is not a valid secp256k1 private key")
        return cls(ec.derive_private_key(value, ec.SECP256K1()))

    @property
    def private_hex(self) -> str:
        return self._key.private_numbers().private_value.to_bytes(32, "big").hex()

    @property
    def public_compressed(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    @property
    def did_key(self) -> str:
        return "did:key:z" + base58btc(_SECP256K1_MULTICODEC + self.public_compressed)

    def sign(self, data: bytes) -> bytes:
        """ECDSA-SHA256 of ``data`` as 64 bytes ``r || s``, low-S."""
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
        if s > SECP256K1_ORDER // 2:
            s = SECP256K1_ORDER - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
