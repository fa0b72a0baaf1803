"""The evaluation report and the policy file fitted from it. Pure: data in, dicts out.

Operating points, after Mirador's three:

``low``            the highest threshold whose false-negative rate meets ``--target-fnr``
                   (brand safety: almost nothing unsafe gets past it; much goes to review)
``best_accuracy``  the threshold with the most right calls (analytics)
``high``           the lowest threshold whose false-positive rate meets ``--target-fpr``
                   (automatic action: almost nothing safe is hit)

The fitted policy flags at ``high`` and sends ``[low, high)`` to review, as NSFW-as-a-Service
queued everything above its low line for people.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from modstream.errors import ConfigError
from modstream.evaluation import curves as cv
from modstream.evaluation.scoring import Scored, scored_arrays
from modstream.pipeline.moderate.policy import PRESETS

__all__ = ["Targets", "build_report", "fitted_policy", "render_text"]

ERRORS_LISTED = 20


@dataclass(frozen=True, slots=True)
class Targets:
    fnr: float = 0.005
    fpr: float = 0.01

    def __post_init__(self) -> None:
        for name, value in (("--target-fnr", self.fnr), ("--target-fpr", self.fpr)):
            if not 0.0 < value < 1.0:
                raise ConfigError(f"{name} {value} must lie between 0 and 1")


def build_report(
    scored: Sequence[Scored],
    targets: Targets,
    *,
    model: str,
    preprocessing: str,
    rounds: int = 2000,
    now: datetime | None = None,
) -> dict[str, Any]:
    scores, labels = scored_arrays(scored)
    c = cv.curves(scores, labels)
    if c.positives == 0 or c.negatives == 0:
        raise ConfigError(
            f"the scored set has {c.positives} not-safe and {c.negatives} safe images: "
            "thresholds need both"
        )
    indices = {
        "low": cv.low_threshold(c, targets.fnr),
        "best_accuracy": cv.best_accuracy(c),
        "high": cv.high_threshold(c, targets.fpr),
    }
    thresholds = {
        name: cv.operating_point(c, index, rounds=rounds).as_dict()
        for name, index in indices.items()
    }
    presets = {
        name: _at(scores, labels, policy.flag_at, rounds) for name, policy in PRESETS.items()
    }
    failed = [item for item in scored if item.nsfw is None]
    return {
        "auc_roc": round(c.auc_roc(), 6),
        "average_precision": round(c.average_precision(), 6),
        "n": len(scores),
        "positives": c.positives,
        "negatives": c.negatives,
        "targets": {"fnr": targets.fnr, "fpr": targets.fpr},
        "thresholds": thresholds,
        "presets": presets,
        "warnings": _warnings(c, targets, failed) + _unreachable(thresholds["high"], targets),
        "errors": {
            "count": len(failed),
            "by_kind": dict(Counter(str(item.error_kind) for item in failed)),
            "first": [
                {
                    "input": item.item.input.label,
                    "kind": item.error_kind,
                    "message": item.error_message,
                }
                for item in failed[:ERRORS_LISTED]
            ],
        },
        "model": model,
        "preprocessing": preprocessing,
        "evaluated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
    }


def fitted_policy(report: dict[str, Any], name: str = "fitted") -> dict[str, Any]:
    """``policy.json``: flag at ``high``, review from ``low``, and where the numbers came from."""
    high = min(report["thresholds"]["high"]["threshold"], 1.0)  # see the report's warning
    low = min(report["thresholds"]["low"]["threshold"], high)
    return {
        "name": name,
        "flag_at": high,
        "review_at": low if low < high else None,
        "model": report["model"],
        "preprocessing": report["preprocessing"],
        "fitted_at": report["evaluated_at"],
        "fitted_on": {"n": report["n"], "positives": report["positives"]},
        "targets": report["targets"],
    }


def render_text(report: dict[str, Any]) -> str:
    """The report as a person reads it in a terminal."""
    t = report["targets"]
    lines = [
        f"{report['n']} images ({report['positives']} not safe, {report['negatives']} safe), "
        f"model {report['model']}, {report['preprocessing']} preprocessing",
        f"AUC-ROC {report['auc_roc']:.4f}   average precision {report['average_precision']:.4f}",
        "",
        f"{'':20}{'threshold':>10}"
        + "".join(f"{name:>22}" for name in ("precision", "recall", "FPR", "FNR", "accuracy")),
    ]
    rows = {
        f"low (FNR<={t['fnr']:g})": report["thresholds"]["low"],
        "best_accuracy": report["thresholds"]["best_accuracy"],
        f"high (FPR<={t['fpr']:g})": report["thresholds"]["high"],
    }
    rows.update({f"preset {name}": point for name, point in report["presets"].items()})
    for label, point in rows.items():
        cells = "".join(_cell(point, metric) for metric in cv.METRICS)
        lines.append(f"{label:<20}{point['threshold']:>10.4f}{cells}")
    lines.append("(95 % bootstrap intervals in brackets)")
    for warning in report["warnings"]:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def _at(scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], threshold: float, rounds: int
        ) -> dict[str, Any]:  # fmt: skip
    confusion = cv.confusion_at(scores, labels, threshold)
    intervals = cv.bootstrap_intervals(confusion, rounds=rounds)
    return cv.OperatingPoint(threshold, confusion, intervals).as_dict()


def _warnings(c: cv.Curves, targets: Targets, failed: Sequence[Scored]) -> list[str]:
    warnings = []
    need_positives = math.ceil(1 / targets.fnr)
    if c.positives < need_positives:
        warnings.append(
            f"only {c.positives} not-safe images: a false-negative rate of {targets.fnr:g} needs "
            f"at least {need_positives} to mean anything, so 'low' is a rough guess"
        )
    need_negatives = math.ceil(1 / targets.fpr)
    if c.negatives < need_negatives:
        warnings.append(
            f"only {c.negatives} safe images: a false-positive rate of {targets.fpr:g} needs "
            f"at least {need_negatives} to mean anything, so 'high' is a rough guess"
        )
    if failed:
        kinds = ", ".join(f"{n} {k}" for k, n in Counter(str(f.error_kind) for f in failed).items())
        one = len(failed) == 1
        warnings.append(
            f"{len(failed)} {'input' if one else 'inputs'} could not be scored and "
            f"{'is' if one else 'are'} left out ({kinds})"
        )
    return warnings


def _unreachable(high: dict[str, Any], targets: Targets) -> list[str]:
    if high["threshold"] <= 1.0:
        return []
    return [
        f"no threshold meets the false-positive target {targets.fpr:g}: a safe image scored "
        "1.0, so the fitted policy flags only scores of exactly 1.0"
    ]


def _cell(point: dict[str, Any], metric: str) -> str:
    value = point[metric]
    low, high = point["ci95"].get(metric, [None, None])
    if value is None:
        return f"{'n/a':>22}"
    if low is None or high is None:
        return f"{value:>22.4f}"
    return f"{value:.4f} [{low:.3f}, {high:.3f}]".rjust(22)
