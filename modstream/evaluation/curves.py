"""Threshold metrics of a binary score, in numpy. Pure: no I/O, no randomness but a seeded one.

An image is called positive (not safe) when ``score >= threshold``, as
:meth:`modstream.pipeline.moderate.policy.Policy.decide` flags it. Curves follow scikit-learn's
definitions, so the numbers agree with it: the ROC curve's points are the distinct scores, AUC
is the trapezoidal area under them (ties count half), and average precision is
``sum((R_k - R_(k-1)) * P_k)`` over the distinct thresholds in decreasing order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Confusion",
    "Curves",
    "OperatingPoint",
    "best_accuracy",
    "bootstrap_intervals",
    "confusion_at",
    "curves",
    "high_threshold",
    "low_threshold",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
METRICS = ("precision", "recall", "fpr", "fnr", "accuracy")


@dataclass(frozen=True, slots=True)
class Confusion:
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def metrics(self) -> dict[str, float]:
        """Precision, recall, FPR, FNR and accuracy; NaN where a denominator is zero."""
        return {
            "precision": _ratio(self.tp, self.tp + self.fp),
            "recall": _ratio(self.tp, self.tp + self.fn),
            "fpr": _ratio(self.fp, self.fp + self.tn),
            "fnr": _ratio(self.fn, self.tp + self.fn),
            "accuracy": _ratio(self.tp + self.tn, self.n),
        }


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    threshold: float
    confusion: Confusion
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        metrics = self.confusion.metrics()
        # Not rounded: a threshold rounded up would no longer call its own image positive.
        body: dict[str, Any] = {"threshold": self.threshold}
        body.update({name: _rounded(value) for name, value in metrics.items()})
        c = self.confusion
        body.update(tp=c.tp, fp=c.fp, tn=c.tn, fn=c.fn)
        body["ci95"] = {
            name: [_rounded(low), _rounded(high)] for name, (low, high) in self.intervals.items()
        }
        return body


@dataclass(frozen=True, slots=True)
class Curves:
    """Counts at every distinct score, highest first, with the all-negative point in front."""

    thresholds: FloatArray  # thresholds[0] is +inf: nothing is called positive
    tps: IntArray
    fps: IntArray
    positives: int
    negatives: int

    @property
    def tpr(self) -> FloatArray:
        return self.tps / max(self.positives, 1)

    @property
    def fpr(self) -> FloatArray:
        return self.fps / max(self.negatives, 1)

    @property
    def precision(self) -> FloatArray:
        predicted = self.tps + self.fps
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(predicted > 0, self.tps / np.maximum(predicted, 1), 1.0)

    def auc_roc(self) -> float:
        if self.positives == 0 or self.negatives == 0:
            return math.nan
        fpr, tpr = self.fpr, self.tpr
        return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))

    def average_precision(self) -> float:
        if self.positives == 0:
            return math.nan
        recall = self.tpr
        return float(np.sum(np.diff(recall) * self.precision[1:]))

    def confusion(self, index: int) -> Confusion:
        tp, fp = int(self.tps[index]), int(self.fps[index])
        return Confusion(tp=tp, fp=fp, tn=self.negatives - fp, fn=self.positives - tp)


def curves(scores: npt.ArrayLike, labels: npt.ArrayLike) -> Curves:
    """Cumulative true and false positives at each distinct score (1 = not safe)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("scores and labels must be one-dimensional and of the same length")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (safe) or 1 (not safe)")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.array([], int)
    tps = np.cumsum(y)[last_of_each] if len(s) else np.array([], np.int64)
    fps = (last_of_each + 1) - tps
    return Curves(
        thresholds=np.r_[np.inf, s[last_of_each]],
        tps=np.r_[0, tps].astype(np.int64),
        fps=np.r_[0, fps].astype(np.int64),
        positives=int(y.sum()),
        negatives=int(len(y) - y.sum()),
    )


def confusion_at(scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float) -> Confusion:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64).astype(bool)
    called = s >= threshold
    return Confusion(
        tp=int(np.sum(called & y)),
        fp=int(np.sum(called & ~y)),
        tn=int(np.sum(~called & ~y)),
        fn=int(np.sum(~called & y)),
    )


def low_threshold(c: Curves, target_fnr: float) -> int:
    """Index of the highest threshold whose false-negative rate is at most ``target_fnr``
    (brand safety: almost nothing unsafe gets through). Always exists: the lowest score
    misses nothing."""
    fnr = (c.positives - c.tps) / max(c.positives, 1)
    meeting = np.flatnonzero(fnr <= target_fnr + 1e-12)
    return int(meeting[0])


def high_threshold(c: Curves, target_fpr: float) -> int:
    """Index of the lowest threshold whose false-positive rate is at most ``target_fpr``
    (automatic action: almost nothing safe is hit). Index 0 (+inf, flag nothing) when even the
    top score is a false positive too many."""
    meeting = np.flatnonzero(c.fps / max(c.negatives, 1) <= target_fpr + 1e-12)
    return int(meeting[-1])


def best_accuracy(c: Curves) -> int:
    """Index of the threshold with the most right calls (the highest such, on a tie)."""
    right = c.tps + (c.negatives - c.fps)
    return int(np.argmax(right))


def policy_threshold(c: Curves, index: int) -> float:
    """The threshold for the operating point at ``index``, halfway between its score and the
    next lower one: every threshold in between makes the same calls, and the middle one keeps
    them when a rescore differs in the last digits (another batch size, another device). At
    +inf (call nothing) it is halfway between the top score and 1, or just above 1 when a score
    is exactly 1."""
    upper = float(c.thresholds[index])
    lower = float(c.thresholds[index + 1]) if index + 1 < len(c.thresholds) else 0.0
    if math.isinf(upper):
        if lower >= 1.0:
            return float(np.nextafter(lower, np.inf))
        upper = 1.0
    return (upper + lower) / 2


def bootstrap_intervals(
    confusion: Confusion, *, rounds: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of each metric at a fixed threshold.

    Resampling n images with replacement only moves counts between the four cells of the
    confusion matrix, so a round is one multinomial draw over them: exact, and instant for any n.
    """
    n = confusion.n
    if n == 0:
        return {name: (math.nan, math.nan) for name in METRICS}
    cells = np.array([confusion.tp, confusion.fp, confusion.tn, confusion.fn]) / n
    draws = np.random.default_rng(seed).multinomial(n, cells, size=rounds).astype(np.float64)
    tp, fp, tn, fn = draws.T
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "fpr": fp / (fp + tn),
            "fnr": fn / (tp + fn),
            "accuracy": (tp + tn) / n,
        }
    tail = (1 - level) / 2 * 100
    intervals: dict[str, tuple[float, float]] = {}
    for name, samples in values.items():
        finite = samples[np.isfinite(samples)]
        if len(finite) == 0:
            intervals[name] = (math.nan, math.nan)
            continue
        low, high = np.percentile(finite, [tail, 100 - tail])
        intervals[name] = (float(low), float(high))
    return intervals


def operating_point(c: Curves, index: int, *, rounds: int = 2000, seed: int = 0) -> OperatingPoint:
    confusion = c.confusion(index)
    return OperatingPoint(
        threshold=policy_threshold(c, index),
        confusion=confusion,
        intervals=bootstrap_intervals(confusion, rounds=rounds, seed=seed),
    )


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)
