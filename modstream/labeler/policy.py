"""Which label values a decision earns: the labeler's policy. Pure, no I/O.

A rule gives a value to results with a decision (``flagged``, or ``matched`` for known content),
optionally only from a score up (``min_score``). The review band never gets an automatic label:
people decide it, and a reviewer's ``nsfw`` gives ``review_value``. Values are words, never
scores (the atproto label spec advises against putting scores in values). The first rule that
applies gives the result's value, so graded rules list the strictest first.

Presets (``--label-policy``, or ``"labels": "PRESET"`` in a policy file):

``porn`` (default)
    flagged -> ``porn``: Bluesky's global value for explicit sexual imagery, which clients hide
    behind the adult-content setting.
``sexual``
    flagged -> ``sexual``: the milder global value (clients blur, with a warning).
``graded``
    flagged with a score of 0.9 or more -> ``porn``, other flagged -> ``sexual``.

A policy file may instead hold ``"labels": {"rules": [{"decision": "flagged", "value": "porn",
"min_score": 0.9}, ...], "review_value": "porn"}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modstream.errors import ConfigError

__all__ = ["LABEL_PRESETS", "LabelPolicy", "LabelRule", "label_policy_from"]

_DECISIONS = ("flagged", "matched")
# Label values: lower-case letters and dashes (custom values), or a leading '!' (system values).
_VALUE = re.compile(r"!?[a-z][a-z-]{0,127}")


@dataclass(frozen=True, kw_only=True, slots=True)
class LabelRule:
    value: str
    decision: str = "flagged"
    min_score: float | None = None

    def __post_init__(self) -> None:
        if self.decision not in _DECISIONS:
            raise ConfigError(
                f"a label rule applies to {' or '.join(_DECISIONS)} results, not "
                f"{self.decision!r} (the review band is labelled by people)"
            )
        if not _VALUE.fullmatch(self.value) or len(self.value.encode()) > 128:
            raise ConfigError(f"label value {self.value!r}: lower-case letters and '-' only")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"min_score {self.min_score} is outside 0..1")

    def applies(self, decision: str, nsfw: float) -> bool:
        return decision == self.decision and (self.min_score is None or nsfw >= self.min_score)


@dataclass(frozen=True, kw_only=True, slots=True)
class LabelPolicy:
    name: str
    rules: tuple[LabelRule, ...]
    review_value: str

    def __post_init__(self) -> None:
        LabelRule(value=self.review_value)  # the same syntax as a rule's value

    def automatic(self, decision: str, nsfw: float) -> str | None:
        """The value a result earns by itself: the first rule that applies (list the strictest
        first); None in the review band and for safe results."""
        for rule in self.rules:
            if rule.applies(decision, nsfw):
                return rule.value
        return None

    @property
    def values(self) -> tuple[str, ...]:
        """Every value this policy can publish (what the labeler declares)."""
        return tuple(dict.fromkeys([*(rule.value for rule in self.rules), self.review_value]))


LABEL_PRESETS: dict[str, LabelPolicy] = {
    "porn": LabelPolicy(name="porn", rules=(LabelRule(value="porn"),), review_value="porn"),
    "sexual": LabelPolicy(name="sexual", rules=(LabelRule(value="sexual"),), review_value="sexual"),
    "graded": LabelPolicy(
        name="graded",
        rules=(LabelRule(value="porn", min_score=0.9), LabelRule(value="sexual")),
        review_value="porn",
    ),
}


def label_policy_from(spec: Any) -> LabelPolicy:
    """A preset name, or the ``labels`` object of a policy file."""
    if isinstance(spec, str):
        if spec not in LABEL_PRESETS:
            raise ConfigError(f"unknown label policy {spec!r}; presets: {', '.join(LABEL_PRESETS)}")
        return LABEL_PRESETS[spec]
    if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list) or not spec["rules"]:
        raise ConfigError('"labels" must be a preset name or {"rules": [...], "review_value"}')
    rules = []
    for rule in spec["rules"]:
        if not isinstance(rule, dict) or not isinstance(rule.get("value"), str):
            raise ConfigError(f"a label rule needs a 'value' string: {rule!r}")
        unknown = set(rule) - {"value", "decision", "min_score"}
        if unknown:
            raise ConfigError(f"unknown keys in a label rule: {', '.join(sorted(unknown))}")
        rules.append(LabelRule(**rule))
    review_value = spec.get("review_value", rules[0].value)
    if not isinstance(review_value, str):
        raise ConfigError("review_value must be a label value string")
    return LabelPolicy(name="custom", rules=tuple(rules), review_value=review_value)
