"""Turn a score into a decision: ``flagged``, ``review`` or ``safe``. Pure, no I/O.

Presets (thresholds on open_nsfw's NSFW probability; fit your own with labelled data):

``brand-safety`` flag >= 0.20
    open_nsfw's authors call scores below 0.2 "likely safe"; anything above is not safe enough to
    place an ad next to. Few false negatives, many false positives.
``balanced`` flag >= 0.50
    The model's own decision boundary (the larger of its two softmax outputs).
``auto-ban`` flag >= 0.80
    The authors' "highly probable NSFW" line: few false positives, for automatic action.

Any preset can add a review band (``review_at``): scores in ``[review_at, flag_at)`` go to people,
as NSFW-as-a-Service did with everything above 0.3.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import orjson

from modstream.errors import ConfigError
from modstream.pipeline.moderate.brandsafety import BrandSafety
from modstream.pipeline.moderate.decisions import Decision

__all__ = ["DEFAULT_POLICY", "PRESETS", "Decision", "Policy", "resolve_policy"]

# The largest |screen - exact| measured on the score ladders (0.0175, large and progressive JPEGs,
# f32 screen), with room to spare.
SCREEN_ERROR_MARGIN = 0.025


@dataclass(frozen=True, kw_only=True, slots=True)
class Policy:
    name: str
    flag_at: float
    review_at: float | None = None
    # Where a fitted policy's thresholds came from (``modstream eval`` writes them): the model id
    # and the preprocessing its scores were computed with. None for presets and hand-made ones.
    model: str | None = None
    preprocessing: str | None = None
    # The brand-safety tiers' own thresholds (brandsafety.py); the decision gives the rest.
    brand_safety: BrandSafety = dataclasses.field(default_factory=BrandSafety)

    def __post_init__(self) -> None:
        if not 0.0 <= self.flag_at <= 1.0:
            raise ConfigError(f"flag threshold {self.flag_at} is outside 0..1")
        if self.review_at is not None and not 0.0 <= self.review_at <= self.flag_at:
            raise ConfigError(
                f"review threshold {self.review_at} must lie between 0 and the flag threshold "
                f"{self.flag_at}"
            )

    def decide(self, nsfw: float) -> Decision:
        if nsfw >= self.flag_at:
            return Decision.FLAGGED
        if self.review_at is not None and nsfw >= self.review_at:
            return Decision.REVIEW
        return Decision.SAFE

    @property
    def lowest_threshold(self) -> float:
        return self.flag_at if self.review_at is None else min(self.review_at, self.flag_at)

    @property
    def thresholds(self) -> tuple[float, ...]:
        """Where a score's decision changes: the flag threshold, and the review one if any."""
        return (self.flag_at,) if self.review_at is None else (self.review_at, self.flag_at)

    def confirmation_floor(self, confirm_at: float) -> float:
        """The screen score from which fast mode must rescore exactly under this policy.

        ``confirm_at`` (0.05 by default) sits far below the presets' thresholds. A policy with a
        threshold near or below it needs a lower floor: every screen score within
        :data:`SCREEN_ERROR_MARGIN` of a threshold is confirmed, so no decision rests on a screen.
        """
        return max(0.0, min(confirm_at, self.lowest_threshold - SCREEN_ERROR_MARGIN))

    def with_review(self, review_at: float | None) -> Policy:
        return dataclasses.replace(self, review_at=review_at)

    def fit_mismatch(self, model: str, preprocessing: str) -> str | None:
        """Why this policy's thresholds may not hold for scores from ``model`` with
        ``preprocessing``, or None. Thresholds fitted on exact scores hold in fast mode too: fast
        mode rescores exactly every image near a threshold."""
        problems = []
        if self.model is not None and self.model != model:
            problems.append(f"it was fitted on model {self.model}, this is {model}")
        fitted = self.preprocessing
        if fitted is not None and fitted != preprocessing and fitted != "exact":
            problems.append(f"it was fitted with {fitted} preprocessing, this runs {preprocessing}")
        if not problems:
            return None
        return (
            f"policy {self.name!r} may not mean here what it meant when fitted: "
            + "; ".join(problems)
            + " (fit it again with modstream eval)"
        )


PRESETS: dict[str, Policy] = {
    "brand-safety": Policy(name="brand-safety", flag_at=0.20),
    "balanced": Policy(name="balanced", flag_at=0.50),
    "auto-ban": Policy(name="auto-ban", flag_at=0.80),
}
DEFAULT_POLICY = "balanced"


def resolve_policy(spec: str) -> Policy:
    """A preset name, an explicit ``flag=0.7[,review=0.3]``, or a path to a JSON policy file."""
    if spec in PRESETS:
        return PRESETS[spec]
    if "=" in spec:
        return _parse_thresholds(spec)
    path = Path(spec)
    if path.is_file():
        return _load_file(path)
    names = ", ".join(PRESETS)
    raise ConfigError(
        f"unknown policy {spec!r}: use a preset ({names}), 'flag=0.7,review=0.3', or a policy file"
    )


def _parse_thresholds(spec: str) -> Policy:
    values: dict[str, float] = {}
    for part in spec.split(","):
        key, _, raw = part.partition("=")
        try:
            values[key.strip()] = float(raw)
        except ValueError:
            raise ConfigError(f"policy threshold {part!r} is not a number") from None
    unknown = set(values) - {"flag", "review"}
    if unknown or "flag" not in values:
        raise ConfigError(f"policy {spec!r} needs 'flag=' and may have 'review=' only")
    return Policy(name="custom", flag_at=values["flag"], review_at=values.get("review"))


def _load_file(path: Path) -> Policy:
    try:
        data = orjson.loads(path.read_bytes())
        return Policy(
            name=str(data.get("name", path.stem)),
            flag_at=float(data["flag_at"]),
            review_at=None if data.get("review_at") is None else float(data["review_at"]),
            model=None if data.get("model") is None else str(data["model"]),
            preprocessing=None if data.get("preprocessing") is None else str(data["preprocessing"]),
            brand_safety=_brand_safety(data.get("brand_safety")),
        )
    except (ConfigError, orjson.JSONDecodeError, KeyError, TypeError, ValueError,
            AttributeError) as exc:  # fmt: skip
        raise ConfigError(f"policy file {path} is not valid: {exc}") from exc


def _brand_safety(data: object) -> BrandSafety:
    """A policy file's ``"brand_safety": {"floor_at": 0.97, "low_at": 0.05}``; either may be left
    out (its default holds)."""
    if data is None:
        return BrandSafety()
    if not isinstance(data, dict):
        raise ConfigError(f"brand_safety must be an object, got {type(data).__name__}")
    unknown = sorted(set(data) - {"floor_at", "low_at"})
    if unknown:
        raise ConfigError(f"brand_safety has unknown fields: {', '.join(unknown)}")
    return BrandSafety(**data)
