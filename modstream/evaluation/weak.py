"""Agreement between the pipeline's scores and labels the authors put on their own posts.

Bluesky authors can self-label a post (``porn``, ``sexual``, ``nudity``, ``graphic-media``; the
Jetstream connector keeps them in ``meta.self_labels``), and Mastodon authors can mark media
``sensitive`` (``meta.sensitive``). These are weak, one-sided labels: a self-label is the author's
word, and an image without one is *unlabelled*, not safe. So this reports, per label value, how
the pipeline scored and decided those images, beside the unlabelled ones, and how well the score
separates the two (an AUC against unlabelled images), never an accuracy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modstream.errors import ConfigError
from modstream.evaluation.curves import curves

__all__ = ["SELF_LABELS", "weak_label_report"]

SELF_LABELS = ("porn", "sexual", "nudity", "graphic-media")
UNLABELLED = "unlabelled"
NOTE = (
    "weak, one-sided labels: an author's self-label or sensitive flag is their own word, and an "
    "image without one is unlabelled, not safe; read these as agreement, not accuracy"
)


def read_records(path: Path) -> Iterable[dict[str, Any]]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"--results {path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"--results {path}, line {number}: not JSON ({exc})") from None
            if isinstance(record, dict):
                yield record


def groups_of(record: dict[str, Any]) -> list[str]:
    """The weak-label groups a result record belongs to (``source: value``)."""
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    source = str(record.get("source", "unknown"))
    assert isinstance(meta, dict)
    if "self_labels" in meta:
        labels = [str(v) for v in meta.get("self_labels") or [] if isinstance(v, str)]
        return [f"{source}: {label}" for label in labels] or [f"{source}: {UNLABELLED}"]
    if "sensitive" in meta:
        return [f"{source}: {'sensitive' if meta['sensitive'] is True else UNLABELLED}"]
    return []


def weak_label_report(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    scores: dict[str, list[float]] = defaultdict(list)
    decisions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    total = errors = without_labels = 0
    for record in records:
        total += 1
        if "error" in record or not isinstance(record.get("nsfw"), int | float):
            errors += 1
            continue
        found = groups_of(record)
        if not found:
            without_labels += 1
        for group in found:
            scores[group].append(float(record["nsfw"]))
            decisions[group][str(record.get("decision", "unknown"))] += 1
    report: dict[str, Any] = {
        "note": NOTE,
        "records": total,
        "errors": errors,
        "without_label_fields": without_labels,
        "groups": {},
    }
    for group in sorted(scores):
        values = np.array(scores[group])
        source = group.split(": ", 1)[0]
        body: dict[str, Any] = {
            "n": len(values),
            "mean_nsfw": round(float(values.mean()), 6),
            "median_nsfw": round(float(np.median(values)), 6),
            "decisions": dict(decisions[group]),
            "flagged_or_review": round(
                (decisions[group]["flagged"] + decisions[group]["review"]) / len(values), 6
            ),
        }
        unlabelled = scores.get(f"{source}: {UNLABELLED}")
        if unlabelled and not group.endswith(UNLABELLED):
            separated = curves(
                np.r_[values, unlabelled], np.r_[np.ones(len(values)), np.zeros(len(unlabelled))]
            )
            body["auc_vs_unlabelled"] = round(separated.auc_roc(), 6)
        report["groups"][group] = body
    return report


def render_weak(report: dict[str, Any]) -> str:
    """The weak-label report for a terminal; without any labelled group, one line saying so
    instead of an empty table."""
    records, errors = report["records"], report["errors"]
    lines = [
        f"{records} result record{'' if records == 1 else 's'} ({errors} "
        f"error{'' if errors == 1 else 's'}, {report['without_label_fields']} from sources "
        "without author labels)",
    ]
    if not report["groups"]:
        lines.append(
            "no author labels to compare with: only Jetstream (self-labels) and Mastodon "
            "(sensitive) results carry them"
        )
        return "\n".join(lines)
    lines += [
        f"note: {report['note']}",
        f"{'group':<28}{'n':>7}{'mean':>8}{'median':>8}{'flag+review':>13}{'AUC vs unlab.':>15}",
    ]
    for group, body in report["groups"].items():
        auc = body.get("auc_vs_unlabelled")
        lines.append(
            f"{group:<28}{body['n']:>7}{body['mean_nsfw']:>8.3f}{body['median_nsfw']:>8.3f}"
            f"{body['flagged_or_review']:>13.1%}{'' if auc is None else f'{auc:.3f}':>15}"
        )
    return "\n".join(lines)
