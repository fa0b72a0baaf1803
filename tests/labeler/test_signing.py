"""Labels signed as atproto verifies them, checked by a real client library (``atproto``)."""

from __future__ import annotations

import base64

import libipld
import pytest
from atproto_crypto.did import parse_did_key
from atproto_crypto.verify import verify_signature

from modstream.errors import BadRequest, ConfigError
from modstream.labeler.keys import SECP256K1_ORDER, SigningKey, base58btc
from modstream.labeler.labels import Label, now_cts

POST = "at://did:plc:abc123/app.bsky.feed.post/3kabc"
# A fixed key, so the did:key below is a known answer: the secp256k1 key of private value 1 has
# the curve's generator as its public key (compressed 0279be66...).
KEY_ONE = SigningKey.from_hex("00" * 31 + "01")


def _label(**fields: object) -> Label:
    values: dict[str, object] = {"src": "did:plc:labeler", "uri": POST, "val": "porn",
                                 "cts": "2026-12-02T03:30:00.000Z"}  # fmt: skip
    return Label(**(values | fields))  # type: ignore[arg-type]


def test_the_did_key_is_the_multibase_of_the_compressed_public_key() -> None:
    """The did:key of private value 1 carries the generator point, and atproto's own parser
    reads it back as a secp256k1 key with those bytes."""
    generator = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert KEY_ONE.public_compressed == generator
    parsed = parse_did_key(KEY_ONE.did_key)
    assert parsed.jwt_alg == "ES256K"
    # atproto hands the point back uncompressed: 04, x (the generator's), y.
    assert parsed.key_bytes[:33] == b"\x04" + generator[1:]
    assert parsed.key_bytes.hex().endswith("fb10d4b8")  # the generator's y ends so
    assert KEY_ONE.did_key.startswith("did:key:zQ3s")


@pytest.mark.parametrize(
    "fields",
    [{}, {"neg": True}, {"cid": "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5p4zd6anr2y5xse"},
     {"exp": "2027-01-01T00:00:00.000Z"}, {"uri": "did:plc:someaccount", "val": "!hide"}],
)  # fmt: skip
def test_a_signed_label_verifies_with_the_did_key(fields: dict[str, object]) -> None:
    """atproto's verifier accepts the signature over the label's DAG-CBOR without sig, for
    every optional field present or not, and refuses it once a field is changed."""
    key = SigningKey.generate()
    label = _label(**fields).signed(key)
    assert label.sig is not None and len(label.sig) == 64
    assert verify_signature(key.did_key, label.signing_bytes(), label.sig)
    tampered = _label(**(fields | {"val": "sexual"}))
    assert not verify_signature(key.did_key, tampered.signing_bytes(), label.sig)


def test_signatures_are_low_s() -> None:
    """Every signature's s lies in the lower half of the curve order (atproto refuses the other
    twin): over many signatures, some of which ECDSA first produced high."""
    key = SigningKey.generate()
    halves = [int.from_bytes(key.sign(bytes([n]))[32:], "big") for n in range(64)]
    assert all(0 < s <= SECP256K1_ORDER // 2 for s in halves)


def test_the_signed_fields_are_the_ones_labelers_sign() -> None:
    """ver 1 and neg always; cid and exp only when given; sig never part of what is signed; the
    CBOR round-trips to those fields and the JSON form carries sig as $bytes."""
    plain = _label()
    assert set(plain.unsigned()) == {"ver", "src", "uri", "val", "neg", "cts"}
    assert libipld.decode_dag_cbor(plain.signing_bytes()) == plain.unsigned()
    signed = _label(cid="bafyx", exp="2027-01-01T00:00:00.000Z").signed(KEY_ONE)
    assert set(signed.unsigned()) == {"ver", "src", "uri", "cid", "val", "neg", "cts", "exp"}
    as_json = signed.json_fields()
    assert signed.sig is not None
    padded = as_json["sig"]["$bytes"] + "=" * (-len(as_json["sig"]["$bytes"]) % 4)
    assert base64.b64decode(padded) == signed.sig
    assert signed.cbor_fields()["sig"] == signed.sig


@pytest.mark.parametrize(
    ("fields", "problem"),
    [({"val": ""}, "1 to 128 bytes"), ({"val": "x" * 129}, "1 to 128 bytes"),
     ({"uri": "https://bsky.app/x"}, "at:// URI or a DID")],
)  # fmt: skip
def test_a_malformed_label_is_refused(fields: dict[str, object], problem: str) -> None:
    """An empty or oversized value, or a subject that is neither a record nor an account."""
    with pytest.raises(BadRequest) as raised:
        _label(**fields)
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("zz" * 32, "64 hexadecimal"), ("ab" * 16, "32 bytes"), ("00" * 32, "not a valid"),
     (f"{SECP256K1_ORDER:064x}", "not a valid")],
)  # fmt: skip
def test_a_bad_key_is_refused_without_showing_it(text: str, problem: str) -> None:
    """A malformed or out-of-range key is a ConfigError whose message never repeats the key;
    a key's repr does not show it either."""
    with pytest.raises(ConfigError) as raised:
        SigningKey.from_hex(text)
    assert problem in str(raised.value) and text not in str(raised.value)
    assert KEY_ONE.private_hex not in repr(KEY_ONE)


def test_base58btc_keeps_leading_zero_bytes() -> None:
    """Leading zero bytes become '1's, as Bitcoin's alphabet has it."""
    assert base58btc(b"\0\0\x01") == "112"
    assert base58btc(b"hello world") == "StV1DL6CwTryKyV"
    assert now_cts().endswith("Z") and len(now_cts()) == 24
