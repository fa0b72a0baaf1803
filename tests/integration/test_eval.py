"""``modstream eval`` as a user runs it: a labelled set in, a report, plots, an HTML page and a
policy file out; the policy file then drives ``modstream run`` and ``modstream score``.

The set is the score ladder (reference scores 0.02-0.98, labelled not safe from 0.5 with two
labels flipped, so no threshold is perfect), photo-like JPEGs labelled safe, and one HTML page
saved as a JPEG (which must be counted and left out).
"""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagegen
import locations
import numpy as np
import orjson
import pytest
from browser import HEADLESS, chromium
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from modstream.kafka.broker import EmbeddedBroker
from modstream.pipeline.stream.topics import Topics

from .support import outputs_of_process, unique_group

LADDER = locations.LADDER
FLIPPED = {"syn_12_5.png", "syn_14_0.png"}  # labelled against their reference score
TARGET_FNR, TARGET_FPR = 0.05, 0.05
TARGETS = ["--target-fnr", str(TARGET_FNR), "--target-fpr", str(TARGET_FPR)]


@dataclass(frozen=True)
class Evaluated:
    images: Path
    labels: dict[str, int]  # file name -> label
    out: Path
    report: dict[str, Any]
    stderr: str
    cache_dir: Path
    score_cache: Path


def _labelled_set(root: Path) -> tuple[Path, dict[str, int]]:
    images = root / "images"
    images.mkdir()
    reference: dict[str, float] = json.loads((LADDER / "reference.json").read_text())
    labels: dict[str, int] = {}
    for name, score in reference.items():
        shutil.copy(LADDER / name, images / name)
        labels[name] = int(score >= 0.5) ^ (name in FLIPPED)
    for seed in range(16):
        Image.fromarray(imagegen.photo_like(seed=seed)).save(images / f"photo{seed}.jpg")
        labels[f"photo{seed}.jpg"] = 0
    (images / "page.jpg").write_bytes(imagegen.html_page())
    labels["page.jpg"] = 1
    with (root / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows((f"images/{name}", label) for name, label in labels.items())
    return images, labels


def _modstream(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modstream", *args], capture_output=True, text=True, timeout=300
    )


def _eval(root: Path, cache_dir: Path, score_cache: Path) -> subprocess.CompletedProcess[str]:
    return _modstream(
        "eval", "--labels", str(root / "labels.csv"), "--json", "--out", str(root / "out"),
        "--no-progress", "--cache-dir", str(cache_dir), "--score-cache", str(score_cache),
        "--name", "ours", *TARGETS,
    )  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, ov_cache_dir: Path) -> Evaluated:
    root = tmp_path_factory.mktemp("eval")
    images, labels = _labelled_set(root)
    score_cache = root / "scores.sqlite3"
    done = _eval(root, ov_cache_dir, score_cache)
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout.strip().splitlines()[-1])
    return Evaluated(images, labels, root / "out", report, done.stderr, ov_cache_dir,
                     score_cache)  # fmt: skip


def _independent_scores(evaluated: Evaluated) -> dict[str, float]:
    """``modstream score`` over the same files (exact preprocessing, as eval uses)."""
    done = _modstream(
        "score", "--json", "--no-progress", "--decode", "exact",
        "--cache-dir", str(evaluated.cache_dir), str(evaluated.images),
    )  # fmt: skip
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    return {Path(line["input"]).name: line["nsfw"] for line in lines if "nsfw" in line}


def test_auc_matches_an_independent_computation(evaluated: Evaluated) -> None:
    """scikit-learn over ``modstream score``'s scores gives the AUC and AP eval reports."""
    scores = _independent_scores(evaluated)
    assert set(scores) == set(evaluated.labels) - {"page.jpg"}
    names = sorted(scores)
    y = [evaluated.labels[name] for name in names]
    s = [scores[name] for name in names]
    report = evaluated.report
    assert report["n"] == len(names) and report["positives"] == sum(y)
    assert report["auc_roc"] == pytest.approx(roc_auc_score(y, s), abs=1e-4)
    assert report["average_precision"] == pytest.approx(average_precision_score(y, s), abs=1e-4)
    assert 0.8 < report["auc_roc"] < 1.0  # the flipped labels make it imperfect
    assert report["errors"]["by_kind"] == {"not_an_image": 1}


def test_operating_points_meet_their_targets_on_the_evaluated_scores(evaluated: Evaluated) -> None:
    """Recounted from scores.csv: FNR at 'low' and FPR at 'high' meet the targets (5 %), and the
    best-accuracy threshold makes as many right calls as any threshold can."""
    with (evaluated.out / "scores.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["nsfw"]]
    s = np.array([float(row["nsfw"]) for row in rows])
    y = np.array([int(row["label"]) for row in rows])
    points = evaluated.report["thresholds"]
    assert set(points) == {"low", "best_accuracy", "high"}
    low, high = points["low"]["threshold"], points["high"]["threshold"]
    assert np.mean(s[y == 1] < low) <= TARGET_FNR
    assert np.mean(s[y == 0] >= high) <= TARGET_FPR
    assert points["low"]["fnr"] <= TARGET_FNR and points["high"]["fpr"] <= TARGET_FPR
    assert low < high  # a review band
    best = points["best_accuracy"]["threshold"]
    accuracy = {t: np.mean((s >= t) == (y == 1)) for t in [*s, np.inf]}
    assert np.mean((s >= best) == (y == 1)) == pytest.approx(max(accuracy.values()))
    for point in points.values():
        for metric, (lo, hi) in point["ci95"].items():
            assert lo <= point[metric] <= hi, (metric, lo, point[metric], hi)
    assert set(evaluated.report["presets"]) == {"brand-safety", "balanced", "auto-ban"}


def test_out_holds_the_plots_the_page_the_report_and_the_policy(evaluated: Evaluated) -> None:
    """--out holds three PNG plots, an HTML page with them embedded (nothing fetched) naming the
    input that failed, report.json equal to the --json line, and policy.json with the fitted
    thresholds and their provenance."""
    for name in ("roc.png", "pr.png", "histogram.png"):
        data = (evaluated.out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, name
    page = (evaluated.out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3 and "http" not in page.split("<body>")[1]
    # The page names the input it left out, with its kind.
    assert "<h2>1 input could not be scored</h2>" in page
    assert '<td class="input">' in page and "page.jpg</td><td>not_an_image</td>" in page
    assert orjson.loads((evaluated.out / "report.json").read_bytes()) == evaluated.report
    policy = orjson.loads((evaluated.out / "policy.json").read_bytes())
    assert policy["name"] == "ours"
    assert policy["flag_at"] == evaluated.report["thresholds"]["high"]["threshold"]
    assert policy["review_at"] == evaluated.report["thresholds"]["low"]["threshold"]
    assert policy["model"].startswith("open_nsfw@") and policy["preprocessing"] == "exact"


# ``python -m modstream`` with matplotlib made unimportable, as on an install without the extra.
WITHOUT_MATPLOTLIB = (
    "import runpy, sys; sys.modules['matplotlib'] = None; sys.argv[0] = 'modstream'; "
    "runpy.run_module('modstream', run_name='__main__', alter_sys=True)"
)


def test_without_the_plots_extra_eval_writes_the_rest_and_names_what_it_skipped(
    evaluated: Evaluated, tmp_path: Path
) -> None:
    """Without matplotlib, ``eval --out`` still writes report.json, policy.json, scores.csv and
    report.html (saying the plots were skipped), names the skipped plots and the extra to install
    in one line, and exits 0."""
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable, "-c", WITHOUT_MATPLOTLIB, "eval",
            "--labels", str(evaluated.out.parent / "labels.csv"), "--out", str(out),
            "--no-progress", "--cache-dir", str(evaluated.cache_dir),
            "--score-cache", str(evaluated.score_cache), "--name", "ours", *TARGETS,
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "policy.json", "report.html", "report.json", "scores.csv"
    ]  # fmt: skip
    assert f"wrote report.html, report.json, policy.json, scores.csv to {out}" in done.stdout
    skipped = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert skipped == [
        "modstream eval: skipped roc.png, pr.png, histogram.png: the plots need matplotlib, "
        "the eval extra: pip install 'modstream[eval]'"
    ]
    assert orjson.loads((out / "policy.json").read_bytes())["name"] == "ours"
    assert "Plots skipped" in (out / "report.html").read_text()
    with (out / "scores.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == len(evaluated.labels)


def test_a_second_run_takes_every_score_from_the_cache(evaluated: Evaluated) -> None:
    """The score cache answers every image of a second run, and the report is the same."""
    root = evaluated.out.parent
    done = _eval(root, evaluated.cache_dir, evaluated.score_cache)
    assert done.returncode == 0, done.stderr
    n = evaluated.report["n"]
    assert f"({n} from the score cache)" in done.stderr
    again = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert again["auc_roc"] == evaluated.report["auc_roc"]
    assert again["thresholds"] == evaluated.report["thresholds"]


def _spawn_run(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _expected_decision(score: float, policy: dict[str, Any]) -> str:
    if score >= policy["flag_at"]:
        return "flagged"
    return "review" if score >= policy["review_at"] else "safe"


@pytest.mark.asyncio(loop_scope="session")
async def test_the_policy_file_drives_the_pipelines_decisions(
    evaluated: Evaluated, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """``modstream run --policy policy.json`` over the same images (a backfill): each result
    carries the policy's name and the decision its thresholds give for eval's score."""
    policy = orjson.loads((evaluated.out / "policy.json").read_bytes())
    with (evaluated.out / "scores.csv").open() as handle:
        scores = {
            Path(r["input"]).name: float(r["nsfw"]) for r in csv.DictReader(handle) if r["nsfw"]
        }
    prefix = f"eval-{uuid.uuid4().hex[:8]}"
    topics = Topics.with_prefix(prefix)
    process = _spawn_run(
        [
            sys.executable, "-m", "modstream", "run", "--bootstrap-servers",
            broker.bootstrap_servers, "--topic-prefix", prefix, "--group-id", unique_group("eval"),
            "--metrics-port", "0", "--session-timeout", "2", "--fetch-max-wait", "0.02",
            "--cache-dir", str(evaluated.cache_dir), "--decode", "exact",
            "--policy", str(evaluated.out / "policy.json"),
            "--source", f"backfill:{evaluated.images}", "--allow-file-root", str(evaluated.images),
            "--state-dir", str(tmp_path / "state"),
        ],
    )  # fmt: skip
    try:
        # page.jpg is HTML: the backfill skips it by its bytes, so it gets no output
        reader = await outputs_of_process(
            broker.bootstrap_servers, topics, len(evaluated.labels) - 1, process
        )
        outputs = list(reader.outputs)
        await reader.__aexit__(None, None, None)
    finally:
        process.terminate()
        _, stderr = await asyncio.to_thread(process.communicate, timeout=40)
    results = {Path(o.record["url"]).name: o.record for o in outputs if "error" not in o.record}
    assert set(results) == set(scores)
    decisions = {name: record["decision"] for name, record in results.items()}
    for name, record in results.items():
        assert record["policy"] == "ours"
        assert record["nsfw"] == pytest.approx(scores[name], abs=1e-4)
        assert decisions[name] == _expected_decision(scores[name], policy), name
    assert set(decisions.values()) == {"flagged", "review", "safe"}
    assert b"may not mean here" not in stderr  # fitted on this model: no warning


def test_a_policy_fitted_on_another_model_warns_loudly(
    evaluated: Evaluated, tmp_path: Path
) -> None:
    """A policy file naming another model gives exactly one WARNING line, naming both models."""
    policy = orjson.loads((evaluated.out / "policy.json").read_bytes())
    policy["model"] = "open_nsfw@0000aaaa"
    path = tmp_path / "other.json"
    path.write_bytes(orjson.dumps(policy))
    done = _modstream(
        "score", "--json", "--no-progress", "--cache-dir", str(evaluated.cache_dir),
        "--policy", str(path), str(LADDER / "syn_11_0.png"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "WARNING: policy 'ours' may not mean here what it meant when fitted" in done.stderr
    assert "fitted on model open_nsfw@0000aaaa" in done.stderr
    assert done.stderr.count("may not mean here") == 1


@pytest.mark.slow
def test_the_html_page_shows_its_plots_in_a_real_browser(evaluated: Evaluated) -> None:
    """Headless Chromium loads the page from disk and decodes all three embedded plots (the
    page's own script counts the images with a natural width)."""
    done = subprocess.run(
        [
            chromium(), *HEADLESS, "--virtual-time-budget=5000",
            "--dump-dom", (evaluated.out / "report.html").as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'data-plots-shown="3"' in done.stdout, done.stdout[:500]
    assert "AUC-ROC" in done.stdout
