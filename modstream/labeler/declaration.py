"""How a labeler declares itself: its ``app.bsky.labeler.service`` record and DID document parts.

The record lists the values it publishes (``policies.labelValues``) and defines those that are
not Bluesky's global values (``labelValueDefinitions``: identifier, severity, blurs,
defaultSetting, adultOnly, locales). The DID document needs an ``AtprotoLabeler`` service at the
labeler's public URL and the ``#atproto_label`` verification method: the signing key's did:key.
"""

from __future__ import annotations

from typing import Any

from modstream.labeler.keys import SigningKey
from modstream.labeler.labels import now_cts
from modstream.labeler.policy import LabelPolicy

__all__ = ["GLOBAL_VALUES", "declaration", "did_document"]

# Values every Bluesky client knows; a labeler lists them but does not define them.
GLOBAL_VALUES = frozenset({"porn", "sexual", "nudity", "graphic-media", "!hide", "!warn"})


def declaration(policy: LabelPolicy) -> dict[str, Any]:
    """The ``app.bsky.labeler.service`` record for the values ``policy`` can publish."""
    custom = [value for value in policy.values if value not in GLOBAL_VALUES]
    return {
        "$type": "app.bsky.labeler.service",
        "policies": {
            "labelValues": list(policy.values),
            "labelValueDefinitions": [_definition(value) for value in custom],
        },
        "createdAt": now_cts(),
    }


def _definition(value: str) -> dict[str, Any]:
    """A custom value's definition: hidden behind a warning, for adults only."""
    locale = {"lang": "en", "name": value.replace("-", " "),
              "description": "Judged sexual by this labeler."}  # fmt: skip
    return {
        "identifier": value, "severity": "alert", "blurs": "media", "defaultSetting": "warn",
        "adultOnly": True, "locales": [locale],
    }  # fmt: skip


def did_document(key: SigningKey, endpoint: str) -> dict[str, Any]:
    """The labeler's entries of its DID document (as a PLC operation names them)."""
    if not endpoint.startswith("https://"):
        raise ValueError(f"the labeler's endpoint must be an https URL, not {endpoint!r}")
    return {
        "verificationMethods": {"atproto_label": key.did_key},
        "services": {"atproto_labeler": {"type": "AtprotoLabeler", "endpoint": endpoint}},
    }
