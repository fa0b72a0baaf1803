"""Brand-safety tiers for ad adjacency, in the IAB vocabulary. Pure, no I/O.

An ad server asks "may this advertiser's ad run beside this image?". The IAB Content Taxonomy
(3.x) files that risk under its Sensitive Topics; open_nsfw rates one of them, *Adult & Explicit
Sexual Content* (``Rm3SiT``), and nothing else: a tier here never speaks of violence, drugs,
hate or any other category. The four risk levels are GARM's, kept by the IAB as suitability
codes:

    risk     code     from (defaults: the policy file's "brand_safety" object)  an ad may run in
    floor    bsr001   a match in a bank that blocks, or flagged at >= 0.97        no inventory
    high     bsr002   flagged, below the floor score                              full
    medium   bsr003   the policy's review band                                    full, standard
    low      bsr004   safe, scoring >= 0.05                                       all three
    none     (none)   safe, below 0.05: no category is given                      all three

Inventory filters (TikTok's names; Meta's are expanded, moderate, limited): *full* runs beside
everything but the floor, *standard* also excludes high risk, *limited* also excludes medium.
An error has no tier: what could not be scored is unknown, not safe.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modstream.errors import ConfigError
from modstream.pipeline.moderate.decisions import Decision

__all__ = [
    "ADULT",
    "TAXONOMY",
    "BrandSafety",
    "Inventory",
    "Risk",
    "allowances",
    "allowed",
    "tier_fields",
    "worst",
]

TAXONOMY = "iab-content-3.1"
ADULT = {"id": "Rm3SiT", "name": "Adult & Explicit Sexual Content"}


class Risk(enum.StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    FLOOR = "floor"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @property
    def suitability(self) -> str | None:
        """The IAB suitability code, or None for no risk."""
        return _SUITABILITY.get(self)


_RANKS = {risk: rank for rank, risk in enumerate(Risk)}
_SUITABILITY = {Risk.FLOOR: "bsr001", Risk.HIGH: "bsr002", Risk.MEDIUM: "bsr003",
                Risk.LOW: "bsr004"}  # fmt: skip


class Inventory(enum.StrEnum):
    FULL = "full"
    STANDARD = "standard"
    LIMITED = "limited"


# The worst risk each inventory filter lets an ad run beside.
_ADMITS = {Inventory.FULL: Risk.HIGH, Inventory.STANDARD: Risk.MEDIUM, Inventory.LIMITED: Risk.LOW}


def allowed(risk: Risk, inventory: Inventory) -> bool:
    return risk.rank <= _ADMITS[inventory].rank


def allowances(risk: Risk) -> dict[str, bool]:
    """``{"full": ..., "standard": ..., "limited": ...}`` for ``risk``."""
    return {inventory.value: allowed(risk, inventory) for inventory in Inventory}


def worst(risks: Iterable[Risk]) -> Risk:
    return max(risks, key=_RANKS.__getitem__, default=Risk.NONE)


@dataclass(frozen=True, kw_only=True, slots=True)
class BrandSafety:
    """Where the tiers begin that the policy's decision does not already give: ``floor_at``
    (a flagged score from which the image is floor, not high) and ``low_at`` (a safe score from
    which it is low risk, not none)."""

    floor_at: float = 0.97
    low_at: float = 0.05

    def __post_init__(self) -> None:
        for name in ("floor_at", "low_at"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"brand_safety.{name} must be a number, got {value!r}")
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"brand_safety.{name} {value} is outside 0..1")
        if self.low_at > self.floor_at:
            raise ConfigError(
                f"brand_safety.low_at {self.low_at} is above floor_at {self.floor_at}"
            )

    def risk(self, decision: Decision, nsfw: float) -> Risk:
        """The tier of an image the policy decided ``decision`` on at score ``nsfw``."""
        if decision is Decision.MATCHED:  # a bank that blocks matched: known content
            return Risk.FLOOR
        if decision is Decision.FLAGGED:
            return Risk.FLOOR if nsfw >= self.floor_at else Risk.HIGH
        if decision is Decision.REVIEW:
            return Risk.MEDIUM
        return Risk.LOW if nsfw >= self.low_at else Risk.NONE

    def fields(self) -> dict[str, float]:
        return {"floor_at": self.floor_at, "low_at": self.low_at}


def tier_fields(risk: Risk) -> dict[str, Any]:
    """A result's ``brand_safety``: the taxonomy, the risk, and the category with its code."""
    code = risk.suitability
    return {
        "taxonomy": TAXONOMY,
        "risk": risk.value,
        "categories": [] if code is None else [{**ADULT, "suitability": code}],
    }
