"""The brand-safety tier of every decision and score, the inventory filters, and the policy
file's ``brand_safety`` object."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from modstream.errors import ConfigError
from modstream.pipeline.moderate.brandsafety import (
    BrandSafety,
    Inventory,
    Risk,
    allowances,
    allowed,
    tier_fields,
    worst,
)
from modstream.pipeline.moderate.moderator import decide
from modstream.pipeline.moderate.policy import PRESETS, Decision, Policy, resolve_policy

BANDED = Policy(name="banded", flag_at=0.6, review_at=0.3)


@pytest.mark.parametrize(
    ("nsfw", "risk"),
    [
        (0.0, Risk.NONE),
        (0.049999, Risk.NONE),
        (0.05, Risk.LOW),
        (0.299999, Risk.LOW),
        (0.3, Risk.MEDIUM),
        (0.599999, Risk.MEDIUM),
        (0.6, Risk.HIGH),
        (0.969999, Risk.HIGH),
        (0.97, Risk.FLOOR),
        (1.0, Risk.FLOOR),
    ],
)
def test_a_policy_with_a_review_band_gives_every_tier(nsfw: float, risk: Risk) -> None:
    decision = decide(BANDED, nsfw, None)
    assert BANDED.brand_safety.risk(decision, nsfw) is risk


@pytest.mark.parametrize(
    ("preset", "nsfw", "risk"),
    [
        ("balanced", 0.49, Risk.LOW),  # no review band: nothing is medium
        ("balanced", 0.5, Risk.HIGH),
        ("brand-safety", 0.04, Risk.NONE),
        ("brand-safety", 0.19, Risk.LOW),
        ("brand-safety", 0.2, Risk.HIGH),
        ("auto-ban", 0.79, Risk.LOW),
        ("auto-ban", 0.98, Risk.FLOOR),
    ],
)
def test_the_presets_tiers(preset: str, nsfw: float, risk: Risk) -> None:
    policy = PRESETS[preset]
    assert policy.brand_safety.risk(policy.decide(nsfw), nsfw) is risk


def test_a_blocking_match_is_the_floor_whatever_the_score() -> None:
    assert BANDED.brand_safety.risk(Decision.MATCHED, 0.0) is Risk.FLOOR


@pytest.mark.parametrize(
    ("risk", "full", "standard", "limited"),
    [
        (Risk.FLOOR, False, False, False),
        (Risk.HIGH, True, False, False),
        (Risk.MEDIUM, True, True, False),
        (Risk.LOW, True, True, True),
        (Risk.NONE, True, True, True),
    ],
)
def test_each_inventory_filter_admits_up_to_its_risk(
    risk: Risk, full: bool, standard: bool, limited: bool
) -> None:
    assert allowances(risk) == {"full": full, "standard": standard, "limited": limited}
    assert allowed(risk, Inventory.STANDARD) is standard


def test_the_worst_of_several_is_the_highest_risk_and_of_none_is_none() -> None:
    assert worst([Risk.LOW, Risk.FLOOR, Risk.MEDIUM]) is Risk.FLOOR
    assert worst([Risk.NONE, Risk.LOW]) is Risk.LOW
    assert worst([]) is Risk.NONE


def test_the_fields_speak_the_iab_vocabulary_and_none_has_no_category() -> None:
    assert tier_fields(Risk.HIGH) == {
        "taxonomy": "iab-content-3.1",
        "risk": "high",
        "categories": [
            {"id": "Rm3SiT", "name": "Adult & Explicit Sexual Content", "suitability": "bsr002"}
        ],
    }
    codes = [tier_fields(r)["categories"][0]["suitability"] for r in Risk if r is not Risk.NONE]
    assert codes == ["bsr004", "bsr003", "bsr002", "bsr001"]
    assert tier_fields(Risk.NONE)["categories"] == []


def test_a_policy_file_sets_the_tiers_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "ads.json"
    path.write_bytes(orjson.dumps({"flag_at": 0.5, "brand_safety": {"floor_at": 0.9}}))
    policy = resolve_policy(str(path))
    assert policy.brand_safety == BrandSafety(floor_at=0.9, low_at=0.05)
    assert policy.brand_safety.risk(policy.decide(0.91), 0.91) is Risk.FLOOR


@pytest.mark.parametrize(
    ("brand_safety", "complaint"),
    [
        ([0.9], "must be an object"),
        ({"floor": 0.9}, "unknown fields: floor"),
        ({"floor_at": 1.5}, "outside 0..1"),
        ({"floor_at": "high"}, "must be a number"),
        ({"floor_at": 0.2, "low_at": 0.3}, "above floor_at"),
    ],
)
def test_a_malformed_brand_safety_object_names_the_file_and_the_fault(
    tmp_path: Path, brand_safety: object, complaint: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps({"flag_at": 0.5, "brand_safety": brand_safety}))
    with pytest.raises(ConfigError, match=complaint) as raised:
        resolve_policy(str(path))
    assert str(path) in str(raised.value)
