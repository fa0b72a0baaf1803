"""The evaluation's arithmetic against scikit-learn, its operating points against their targets,
its bootstrap, its inputs, its weak-label report and the policy files it writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from modstream.errors import ConfigError
from modstream.evaluation import curves as cv
from modstream.evaluation.labelled import Labelled, from_csv, from_dirs
from modstream.evaluation.report import Targets, build_report, fitted_policy, render_text
from modstream.evaluation.scoring import Scored
from modstream.evaluation.weak import weak_label_report
from modstream.imagefiles import Skipped
from modstream.inputs import Input
from modstream.pipeline.moderate.policy import Decision, Policy, resolve_policy

RNG = np.random.default_rng(20261129)


def _random_sets(count: int) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    sets = []
    while len(sets) < count:
        n = int(RNG.integers(2, 400))
        labels = RNG.integers(0, 2, n)
        if labels.min() == labels.max():
            continue
        # Scores that depend on the label, rounded to 1-3 decimals so that ties are common.
        scores = np.clip(RNG.normal(0.3 + 0.4 * labels, 0.25), 0, 1)
        sets.append((np.round(scores, int(RNG.integers(1, 4))), labels))
    return sets


@pytest.mark.parametrize("index", range(40))
def test_auc_and_average_precision_agree_with_scikit_learn(index: int) -> None:
    """Random sets with many tied scores: both numbers match scikit-learn to 1e-12."""
    scores, labels = _random_sets(40)[index]
    c = cv.curves(scores, labels)
    assert c.auc_roc() == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert c.average_precision() == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )


def test_all_tied_scores_give_half_an_auc() -> None:
    """A score that says nothing (all tied) has AUC 0.5, and AP matches scikit-learn's."""
    c = cv.curves([0.5] * 6, [1, 0, 1, 0, 0, 1])
    assert c.auc_roc() == pytest.approx(0.5)
    assert c.average_precision() == pytest.approx(
        average_precision_score([1, 0, 1, 0, 0, 1], [0.5] * 6)
    )


def _fnr(scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], t: float) -> float:
    return cv.confusion_at(scores, labels, t).metrics()["fnr"]


def _fpr(scores: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], t: float) -> float:
    return cv.confusion_at(scores, labels, t).metrics()["fpr"]


@pytest.mark.parametrize("target", [0.005, 0.05, 0.2])
def test_operating_points_meet_their_targets_and_are_the_extreme_ones(target: float) -> None:
    """On every set: ``low`` meets the FNR target and no higher distinct score does; ``high``
    meets the FPR target and no lower one does; ``best_accuracy`` is the best of all."""
    for scores, labels in _random_sets(30):
        c = cv.curves(scores, labels)
        distinct = sorted(set(scores.tolist()))
        # The threshold sits below its operating score; every higher score misses the target.
        index = cv.low_threshold(c, target)
        low, at = cv.policy_threshold(c, index), float(c.thresholds[index])
        assert _fnr(scores, labels, low) <= target and low <= at
        assert all(_fnr(scores, labels, t) > target for t in distinct if t > at)
        # The threshold sits below its operating score and above the next lower one, which
        # (like every lower score) misses the target.
        index = cv.high_threshold(c, target)
        high = cv.policy_threshold(c, index)
        assert _fpr(scores, labels, high) <= target
        assert all(_fpr(scores, labels, t) > target for t in distinct if t < high)
        best = cv.confusion_at(scores, labels, cv.policy_threshold(c, cv.best_accuracy(c)))
        every = [cv.confusion_at(scores, labels, t).metrics()["accuracy"] for t in distinct]
        assert best.metrics()["accuracy"] == pytest.approx(max([*every, 1 - labels.mean()]))


def test_a_threshold_above_every_score_when_even_the_top_one_is_a_false_positive() -> None:
    """The top score is safe: no threshold flags anything without a false positive, so 'high'
    sits just above it (a policy can still hold it) and flags nothing."""
    scores, labels = np.array([0.9, 0.8, 0.1]), np.array([0, 1, 0])
    c = cv.curves(scores, labels)
    index = cv.high_threshold(c, 0.01)
    threshold = cv.policy_threshold(c, index)
    assert 0.9 < threshold <= 1.0
    assert cv.confusion_at(scores, labels, threshold) == c.confusion(index)
    assert c.confusion(index).tp == c.confusion(index).fp == 0


def test_the_reported_confusion_is_what_the_policy_would_decide() -> None:
    """At each operating point, counting ``Policy.decide`` over the set gives its confusion."""
    scores, labels = _random_sets(1)[0]
    c = cv.curves(scores, labels)
    for index in (cv.low_threshold(c, 0.05), cv.best_accuracy(c), cv.high_threshold(c, 0.05)):
        policy = Policy(name="t", flag_at=cv.policy_threshold(c, index))
        flagged = np.array([policy.decide(s) is Decision.FLAGGED for s in scores])
        tp = int(np.sum(flagged & (labels == 1)))
        fp = int(np.sum(flagged & (labels == 0)))
        assert (tp, fp) == (c.confusion(index).tp, c.confusion(index).fp)


def test_bootstrap_intervals_contain_the_point_estimate_and_shrink_with_n() -> None:
    """Each 95 % interval contains its metric's value, and a hundred times the data gives intervals
    at least five times narrower."""
    for scores, labels in _random_sets(20):
        c = cv.curves(scores, labels)
        point = cv.operating_point(c, cv.best_accuracy(c))
        metrics = point.confusion.metrics()
        for name, (low, high) in point.intervals.items():
            if np.isnan(metrics[name]):
                continue
            assert low <= metrics[name] <= high, (name, low, metrics[name], high)
    small = cv.bootstrap_intervals(cv.Confusion(tp=8, fp=2, tn=8, fn=2))
    large = cv.bootstrap_intervals(cv.Confusion(tp=800, fp=200, tn=800, fn=200))
    for name in cv.METRICS:
        assert large[name][1] - large[name][0] < (small[name][1] - small[name][0]) / 5


def _scored(scores: list[float], labels: list[int]) -> list[Scored]:
    return [
        Scored(Labelled(Input(label=f"i{n}", path=Path(f"i{n}")), label), nsfw=score)
        for n, (score, label) in enumerate(zip(scores, labels, strict=True))
    ]


def test_report_warns_about_small_sets_and_counts_failures() -> None:
    """The report has the three points and the presets, warns when a target needs more images than
    the set has, and counts unreadable inputs by kind, in English for one and for many."""
    scores, labels = _random_sets(1)[0]
    scored = _scored(scores.tolist(), labels.tolist())
    failed = Scored(Labelled(Input(label="bad", path=Path("bad")), 1), error_kind="not_an_image",
                    error_message="an HTML document")  # fmt: skip
    report = build_report([*scored, failed], Targets(), model="m", preprocessing="exact")
    assert report["n"] == len(scores) and report["errors"]["by_kind"] == {"not_an_image": 1}
    assert set(report["thresholds"]) == {"low", "best_accuracy", "high"}
    assert set(report["presets"]) == {"brand-safety", "balanced", "auto-ban"}
    assert any("needs at least 200" in warning for warning in report["warnings"])
    assert "1 input could not be scored and is left out (1 not_an_image)" in report["warnings"]
    assert "AUC-ROC" in render_text(report)
    twice = build_report([*scored, failed, failed], Targets(), model="m", preprocessing="exact")
    assert "2 inputs could not be scored and are left out (2 not_an_image)" in twice["warnings"]
    assert report["auc_roc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)


def test_a_set_with_one_class_is_refused() -> None:
    """Without both classes there is no threshold to fit: a clear error, not a report."""
    with pytest.raises(ConfigError, match="thresholds need both"):
        build_report(_scored([0.1, 0.2], [0, 0]), Targets(), model="m", preprocessing="exact")


def test_fitted_policy_loads_with_its_provenance_and_warns_on_another_model(
    tmp_path: Path,
) -> None:
    """policy.json loads as the pipeline's policy (high flags, low reviews) with model and
    preprocessing; a mismatch is described, an exact fit used in fast mode is not."""
    scores, labels = _random_sets(1)[0]
    report = build_report(
        _scored(scores.tolist(), labels.tolist()), Targets(fnr=0.05, fpr=0.05),
        model="open_nsfw@864bb37b", preprocessing="exact",
    )  # fmt: skip
    path = tmp_path / "policy.json"
    path.write_bytes(orjson.dumps(fitted_policy(report, "ours")))
    policy = resolve_policy(str(path))
    assert policy.name == "ours"
    assert policy.flag_at == report["thresholds"]["high"]["threshold"]
    assert policy.review_at == report["thresholds"]["low"]["threshold"]
    assert (policy.model, policy.preprocessing) == ("open_nsfw@864bb37b", "exact")
    assert policy.fit_mismatch("open_nsfw@864bb37b", "exact") is None
    assert policy.fit_mismatch("open_nsfw@864bb37b", "fast") is None  # fast confirms exactly
    problem = policy.fit_mismatch("open_nsfw@0000aaaa", "exact")
    assert problem is not None and "fitted on model open_nsfw@864bb37b" in problem
    fast_fitted = Policy(name="f", flag_at=0.5, preprocessing="fast")
    assert fast_fitted.fit_mismatch("m", "exact") is not None


def test_labels_csv_paths_urls_and_typos(tmp_path: Path) -> None:
    """Relative paths are read from the CSV's folder, URLs stay URLs, and a bad label or header
    stops the run naming the line."""
    (tmp_path / "a.jpg").write_bytes(b"x")
    good = tmp_path / "labels.csv"
    good.write_text("path,label\na.jpg,1\n/abs/b.png,safe\n")
    items = from_csv(good)
    assert [(i.input.path, i.label) for i in items] == [
        (tmp_path / "a.jpg", 1),
        (Path("/abs/b.png"), 0),
    ]
    urls = tmp_path / "urls.csv"
    urls.write_text("url,label\nhttps://img.example/x.jpg,0\n")
    assert from_csv(urls)[0].input.url == "https://img.example/x.jpg"
    typo = tmp_path / "typo.csv"
    typo.write_text("path,label\na.jpg,1\nb.jpg,maybe\n")
    with pytest.raises(ConfigError, match="line 3: label 'maybe'"):
        from_csv(typo)
    no_column = tmp_path / "nocol.csv"
    no_column.write_text("file,label\na.jpg,1\n")
    with pytest.raises(ConfigError, match="'path' or 'url'"):
        from_csv(no_column)


def test_label_folders(tmp_path: Path) -> None:
    """safe= and nsfw= folders label every image below them; another name is refused."""
    for folder, name, kind in (("s", "one.png", "PNG"), ("s", "two.jpg", "JPEG"),
                               ("n", "three.jpg", "JPEG")):  # fmt: skip
        (tmp_path / folder).mkdir(exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / folder / name, format=kind)
    items = from_dirs([f"safe={tmp_path / 's'}", f"nsfw={tmp_path / 'n'}"])
    assert sorted((Path(i.input.label).name, i.label) for i in items) == [
        ("one.png", 0), ("three.jpg", 1), ("two.jpg", 0)
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="safe=DIR or nsfw=DIR"):
        from_dirs([f"maybe={tmp_path}"])


def _record(nsfw: float, decision: str, **meta: Any) -> dict[str, Any]:
    source = "jetstream" if "self_labels" in meta else "mastodon" if "sensitive" in meta else "x"
    return {"nsfw": nsfw, "decision": decision, "source": source, "meta": meta}


def test_weak_labels_are_reported_per_value_beside_the_unlabelled() -> None:
    """Each self-label value and the sensitive flag is its own group beside the unlabelled of its
    source, with decisions counted and an AUC against the unlabelled; errors and label-less
    sources are counted apart."""
    records = [
        _record(0.9, "flagged", self_labels=["porn"]),
        _record(0.7, "flagged", self_labels=["porn", "nudity"]),
        _record(0.2, "safe", self_labels=["nudity"]),
        _record(0.1, "safe", self_labels=[]),
        _record(0.3, "review", self_labels=[]),
        _record(0.8, "flagged", sensitive=True),
        _record(0.05, "safe", sensitive=False),
        {"error": {"kind": "not_an_image"}, "source": "jetstream"},
        _record(0.5, "flagged"),
    ]
    report = weak_label_report(records)
    groups = report["groups"]
    assert report["records"] == 9 and report["errors"] == 1 and report["without_label_fields"] == 1
    assert groups["jetstream: porn"]["n"] == 2
    assert groups["jetstream: porn"]["flagged_or_review"] == 1.0
    assert groups["jetstream: nudity"]["decisions"] == {"flagged": 1, "safe": 1}
    assert groups["jetstream: unlabelled"]["n"] == 2
    # porn (0.9, 0.7) against unlabelled (0.1, 0.3): perfectly separated.
    assert groups["jetstream: porn"]["auc_vs_unlabelled"] == 1.0
    assert "auc_vs_unlabelled" not in groups["jetstream: unlabelled"]
    assert groups["mastodon: sensitive"]["n"] == groups["mastodon: unlabelled"]["n"] == 1
    assert "not safe" in report["note"] and "agreement" in report["note"]


def test_weak_labels_without_any_labelled_group_print_one_line_not_an_empty_table() -> None:
    """Results from sources without author labels (a backfill, the webhook) say there is nothing
    to compare with, and print no table header; with groups, the header and rows are there."""
    from modstream.evaluation.weak import render_weak

    empty = render_weak(weak_label_report([_record(0.5, "flagged"), _record(0.1, "safe")]))
    assert empty.splitlines() == [
        "2 result records (0 errors, 2 from sources without author labels)",
        "no author labels to compare with: only Jetstream (self-labels) and Mastodon (sensitive) "
        "results carry them",
    ]
    table = render_weak(weak_label_report([_record(0.9, "flagged", self_labels=["porn"])]))
    assert (
        table.splitlines()[0] == "1 result record (0 errors, 0 from sources without author labels)"
    )
    assert "group" in table.splitlines()[2] and "jetstream: porn" in table.splitlines()[3]


def test_a_review_override_keeps_the_policy_provenance() -> None:
    """``--review-at`` on a fitted policy keeps the model it was fitted on (for the warning)."""
    policy = Policy(name="p", flag_at=0.5, model="open_nsfw@0000aaaa", preprocessing="exact")
    changed = policy.with_review(0.2)
    assert (changed.review_at, changed.model, changed.preprocessing) == (
        0.2, "open_nsfw@0000aaaa", "exact"
    )  # fmt: skip


def test_without_matplotlib_there_are_no_plots_and_the_page_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """matplotlib is an optional extra: without it draw answers None, and the HTML page is still
    made, saying that the plots were skipped and which extra to install."""
    from modstream.evaluation.pictures import draw, html_page

    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    scores, labels = _random_sets(1)[0]
    report = build_report(_scored(scores.tolist(), labels.tolist()), Targets(), model="m",
                          preprocessing="exact", rounds=10)  # fmt: skip
    assert draw(cv.curves(scores, labels), scores, labels, report) is None
    page = html_page(report, None)
    assert "Plots skipped" in page and "pip install &#x27;modstream[eval]&#x27;" in page
    assert "<img" not in page


def test_label_folders_name_what_they_skip(tmp_path: Path) -> None:
    """A file in a label folder that is not an image by its bytes is left out and handed on with
    its reason (``eval --dirs`` prints it), while an extensionless image is kept."""
    (tmp_path / "s").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "s" / "5d41402abc4b2a76", format="PNG")
    (tmp_path / "s" / "notes.txt").write_text("a note")
    skipped: list[Skipped] = []
    items = from_dirs([f"safe={tmp_path / 's'}"], skipped.append)
    assert [Path(item.input.label).name for item in items] == ["5d41402abc4b2a76"]
    assert [(item.path.name, item.reason) for item in skipped] == [
        ("notes.txt", "text, not an image")
    ]
