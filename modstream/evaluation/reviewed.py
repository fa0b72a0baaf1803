"""Strong labels from people: decisions of the review console (``images.reviewed`` records).

A reviewer's ``nsfw`` or ``safe`` is a label like a labelled set's, so ``modstream eval
--results`` refits the thresholds from them, using the score each record carries (no rescoring).
``skip`` is no label. The queue shows people the review band (and flagged items, when audited),
so the labels cover only the scores they saw: the report says which range that was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from modstream.evaluation.labelled import Labelled
from modstream.evaluation.scoring import Scored
from modstream.inputs import Input

__all__ = ["ReviewedSet", "reviewed_set"]

HUMAN_LABELS = {"nsfw": 1, "safe": 0}


class ReviewedSet:
    def __init__(self, scored: list[Scored], skipped: int, models: Counter[str],
                 modes: Counter[str]) -> None:  # fmt: skip
        self.scored = scored
        self.skipped = skipped
        self.model = models.most_common(1)[0][0] if models else "unknown"
        self.preprocessing = modes.most_common(1)[0][0] if modes else "unknown"
        self.mixed_models = len(models) > 1

    def warnings(self) -> list[str]:
        scores = [item.nsfw for item in self.scored if item.nsfw is not None]
        notes = [
            "labels are reviewers' decisions on the items they were shown: they cover scores "
            f"from {min(scores):.3f} to {max(scores):.3f} only, so thresholds outside that range "
            "are not measured (audit images.flagged, or label a sample below the review band)"
        ]
        if self.skipped:
            notes.append(f"{self.skipped} skipped decisions carry no label and are left out")
        if self.mixed_models:
            notes.append("the records were scored by more than one model; the fit mixes them")
        return notes


def reviewed_set(records: Iterable[dict[str, Any]]) -> ReviewedSet | None:
    """The human-labelled records as a scored set, or None when there are none."""
    scored: list[Scored] = []
    skipped = 0
    models: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    for record in records:
        label = record.get("label")
        if label == "skip":
            skipped += 1
            continue
        if label not in HUMAN_LABELS or not isinstance(record.get("nsfw"), int | float):
            continue
        name = str(record.get("id") or record.get("url"))
        item = Labelled(Input(label=name, url=str(record.get("url"))), HUMAN_LABELS[str(label)])
        scored.append(Scored(item, nsfw=float(record["nsfw"])))
        models[str(record.get("model", "unknown"))] += 1
        modes[str(record.get("preprocessing", "unknown"))] += 1
    if not scored:
        return None
    return ReviewedSet(scored, skipped, models, modes)
