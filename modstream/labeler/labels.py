"""A label as ``com.atproto.label.defs#label`` defines it, and how it is signed.

The signed bytes are the DAG-CBOR encoding of the label without ``sig``: ``ver`` (1), ``src``,
``uri``, ``cid`` (only when given), ``val``, ``neg`` (always, false unless the label negates an
earlier one), ``cts``, ``exp`` (only when given) — the form Ozone and the other labelers sign, so
any client verifies it. DAG-CBOR's canonical map order (shorter keys first, then bytewise) is
the encoder's (``libipld``), not this module's. The JSON form (``queryLabels``) carries ``sig``
as ``{"$bytes": base64}``.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass, replace
from typing import Any

import libipld

from modstream.errors import BadRequest
from modstream.labeler.keys import SigningKey

__all__ = ["LABEL_VERSION", "Label", "now_cts"]

LABEL_VERSION = 1
MAX_VALUE_BYTES = 128


def now_cts() -> str:
    """Now as atproto datetimes are written: UTC, milliseconds, ``Z``."""
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True, slots=True)
class Label:
    src: str  # the labeler's DID
    uri: str  # at:// URI of a record, or a did: for an account
    val: str
    cts: str
    cid: str | None = None  # pins one version of the record
    neg: bool = False
    exp: str | None = None
    sig: bytes | None = None

    def __post_init__(self) -> None:
        if not self.val or len(self.val.encode()) > MAX_VALUE_BYTES:
            raise BadRequest(f"a label value is 1 to {MAX_VALUE_BYTES} bytes, not {self.val!r}")
        if not self.uri.startswith(("at://", "did:")):
            raise BadRequest(f"a label's subject is an at:// URI or a DID, not {self.uri!r}")

    def unsigned(self) -> dict[str, Any]:
        """The fields that are signed, as they are signed."""
        fields: dict[str, Any] = {"ver": LABEL_VERSION, "src": self.src, "uri": self.uri}
        if self.cid is not None:
            fields["cid"] = self.cid
        fields |= {"val": self.val, "neg": self.neg, "cts": self.cts}
        if self.exp is not None:
            fields["exp"] = self.exp
        return fields

    def signing_bytes(self) -> bytes:
        return bytes(libipld.encode_dag_cbor(self.unsigned()))

    def signed(self, key: SigningKey) -> Label:
        return replace(self, sig=key.sign(self.signing_bytes()))

    def cbor_fields(self) -> dict[str, Any]:
        """The label in a ``subscribeLabels`` frame: the signed fields and the raw ``sig``."""
        if self.sig is None:
            raise ValueError("the label is not signed")
        return {**self.unsigned(), "sig": self.sig}

    def json_fields(self) -> dict[str, Any]:
        """The label in a ``queryLabels`` answer: ``sig`` as ``{"$bytes": base64}``."""
        if self.sig is None:
            raise ValueError("the label is not signed")
        encoded = base64.b64encode(self.sig).decode().rstrip("=")
        return {**self.unsigned(), "sig": {"$bytes": encoded}}
