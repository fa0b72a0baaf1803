"""Pictures of an evaluation: ROC and precision-recall curves with the operating points marked,
per-class score histograms (PNG, by matplotlib), and one self-contained HTML page.

matplotlib is the optional ``eval`` extra (``pip install 'modstream[eval]'``): a well-kept
plotting library beats hand-drawn PNGs, and the scorer's images need none of it. Without it
:func:`draw` answers None and the page says the plots were skipped; everything else is written.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
import numpy.typing as npt

from modstream.evaluation.curves import METRICS, Curves

__all__ = ["PICTURES", "PLOTS_MISSING", "draw", "html_page"]

PICTURES = ("roc.png", "pr.png", "histogram.png")
PLOTS_MISSING = "the plots need matplotlib, the eval extra: pip install 'modstream[eval]'"
_COLOURS = {"low": "tab:green", "best_accuracy": "tab:blue", "high": "tab:red"}


def draw(
    c: Curves,
    scores: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    report: dict[str, Any],
) -> dict[str, bytes] | None:
    """Each picture's PNG bytes, by file name; None without matplotlib (:data:`PLOTS_MISSING`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return None
    points = report["thresholds"]
    pictures: dict[str, bytes] = {}

    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.plot(c.fpr, c.tpr, color="black", linewidth=1.5,
              label=f"ROC (AUC {report['auc_roc']:.4f})")  # fmt: skip
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for name, point in points.items():
        axes.scatter(point["fpr"], point["recall"], color=_COLOURS[name], zorder=3,
                     label=f"{name} @ {point['threshold']:.3f}")  # fmt: skip
    axes.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)",
             title="ROC", xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    axes.legend(loc="lower right")
    pictures["roc.png"] = _png(figure, plt)

    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.step(c.tpr, c.precision, where="post", color="black", linewidth=1.5,
              label=f"PR (AP {report['average_precision']:.4f})")  # fmt: skip
    for name, point in points.items():
        if point["precision"] is not None:
            axes.scatter(point["recall"], point["precision"], color=_COLOURS[name], zorder=3,
                         label=f"{name} @ {point['threshold']:.3f}")  # fmt: skip
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall",
             xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    axes.legend(loc="lower left")
    pictures["pr.png"] = _png(figure, plt)

    figure, axes = plt.subplots(figsize=(7, 4))
    bins = [float(edge) for edge in np.linspace(0, 1, 51)]
    axes.hist(scores[labels == 0], bins=bins, alpha=0.6, color="tab:blue", label="safe")
    axes.hist(scores[labels == 1], bins=bins, alpha=0.6, color="tab:red", label="not safe")
    for name, point in points.items():
        axes.axvline(point["threshold"], color=_COLOURS[name], linestyle="--", linewidth=1,
                     label=name)  # fmt: skip
    axes.set(xlabel="nsfw score", ylabel="images", title="Scores by label", yscale="log")
    axes.legend()
    pictures["histogram.png"] = _png(figure, plt)
    return pictures


def html_page(report: dict[str, Any], pictures: dict[str, bytes] | None) -> str:
    """One HTML file with everything in it (pictures as data: URLs, or a line saying why there are
    none), and the inputs that could not be scored, to open and decide."""
    rows = []
    named = {**report["thresholds"], **{f"preset {k}": v for k, v in report["presets"].items()}}
    for name, point in named.items():
        cells = "".join(f"<td>{_cell(point, metric)}</td>" for metric in METRICS)
        rows.append(
            f"<tr><th>{html.escape(name)}</th><td>{point['threshold']:.4f}</td>{cells}</tr>"
        )
    images = "".join(
        f'<figure><img class="plot" alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(data).decode()}"></figure>'
        for name, data in (pictures or {}).items()
    )
    if pictures is None:
        images = f'<p class="skipped">Plots skipped: {html.escape(PLOTS_MISSING)}.</p>'
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report["warnings"])
    heads = "".join(f"<th>{m}</th>" for m in METRICS)
    t = report["targets"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modstream eval</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: .3em .6em; text-align: right; }}
small {{ color: #666; }} figure {{ display: inline-block; margin: .5em; }}
.warnings li {{ color: #a40; }} table.failed td {{ text-align: left; }}
</style></head>
<body>
<h1>modstream eval</h1>
<p>{report["n"]} images ({report["positives"]} not safe, {report["negatives"]} safe);
model <code>{html.escape(report["model"])}</code>, {html.escape(report["preprocessing"])}
preprocessing; evaluated {html.escape(report["evaluated_at"])}.</p>
<p><b>AUC-ROC {report["auc_roc"]:.4f}</b> &middot; <b>average precision
{report["average_precision"]:.4f}</b> &middot; targets: FNR &le; {t["fnr"]:g} (low),
FPR &le; {t["fpr"]:g} (high)</p>
<ul class="warnings">{warnings}</ul>
<table><tr><th></th><th>threshold</th>{heads}</tr>{"".join(rows)}</table>
<p><small>95 % bootstrap intervals in brackets. The fitted policy flags at <i>high</i> and
sends scores from <i>low</i> up to it to review.</small></p>
{_failed(report["errors"])}
{images}
<script>
// Count the plots the browser decoded, for people and for tests.
window.addEventListener("load", () => {{
  const shown = [...document.querySelectorAll("img.plot")]
    .filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.plotsShown = String(shown);
}});
</script>
</body></html>
"""


def _failed(errors: dict[str, Any]) -> str:
    """The inputs that could not be scored (the first of them, when there are many)."""
    if not errors["count"]:
        return ""
    listed = errors["first"]
    count = errors["count"]
    heading = f"{count} input{'' if count == 1 else 's'} could not be scored"
    if len(listed) < count:
        heading += f" (the first {len(listed)} below)"
    rows = "".join(
        f'<tr><td class="input">{html.escape(str(e["input"]))}</td>'
        f"<td>{html.escape(str(e['kind']))}</td>"
        f"<td>{html.escape(str(e['message'] or ''))}</td></tr>"
        for e in listed
    )
    return (
        f'<h2>{heading}</h2>\n<table class="failed"><tr><th>input</th><th>kind</th>'
        f"<th>message</th></tr>{rows}</table>"
    )


def _cell(point: dict[str, Any], metric: str) -> str:
    value = point[metric]
    if value is None:
        return "n/a"
    low, high = point["ci95"].get(metric, [None, None])
    interval = f" <small>[{low:.3f}, {high:.3f}]</small>" if low is not None else ""
    return f"{value:.4f}{interval}"


def _png(figure: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
