"""What the devices report, checked against what they compile, and what a device that refuses
a batch does to its callers (real OpenVINO on the CPU)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import locations
import numpy as np
import pytest
from scorerconfigs import scorer_config

from modstream.errors import DeviceError
from modstream.models.capabilities import predict_runs_precision
from modstream.models.device_spec import DeviceSpec
from modstream.models.network import compile_network, make_core, prepared_model, runs_precision
from modstream.models.weights import locate_weights
from modstream.pipeline.score.batcher import BatchPolicy
from modstream.pipeline.score.devices import DeviceWorker, ScoreArray
from modstream.pipeline.score.scorer import Scorer

LADDER = locations.LADDER
REFERENCE: dict[str, float] = json.loads((LADDER / "reference.json").read_text())


@pytest.mark.parametrize("precision", ["bf16", "f16", "f32"])
def test_the_capability_probe_agrees_with_the_precision_the_cpu_compiles(
    precision: str, tmp_path: Path, cpu_path: Callable[[str], None]
) -> None:
    """``runs_precision`` answers, before compiling, whether the hint will be honoured: the
    start-up decision of ``screening="auto"`` rests on it."""
    core = make_core(tmp_path)
    model = prepared_model(core, locate_weights(None), tmp_path)
    network = compile_network(core, model, DeviceSpec(precision=precision), max_batch_size=1)
    probed = runs_precision(core, "CPU", precision)
    cpu_path(f"asked for {precision}, compiled {network.precision}; the probe said {probed}")
    assert probed == (network.precision == precision), network.precision


def test_virtual_devices_and_unknown_precisions_are_never_cheaper() -> None:
    core = make_core(None)
    assert not runs_precision(core, "AUTO:CPU", "bf16")
    assert not runs_precision(core, "CPU", "q4")


@pytest.mark.parametrize("precision", ["bf16", "f16", "f32"])
def test_the_cpu_flags_predict_what_openvino_answers(
    precision: str, cpu_path: Callable[[str], None]
) -> None:
    """The prediction that routes the first images (before OpenVINO loads) matches OpenVINO's
    own answer on this CPU, or abstains."""
    predicted = predict_runs_precision("CPU", precision)
    answered = runs_precision(make_core(None), "CPU", precision)
    said = "abstained" if predicted is None else f"predicted {predicted}"
    cpu_path(f"{precision}: the flags {said}, OpenVINO answered {answered}")
    assert predicted in (None, answered)


def test_predictions_from_flags() -> None:
    avx2 = frozenset({"sse4_2", "avx2", "fma"})
    sapphire = avx2 | {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert predict_runs_precision("CPU", "bf16", avx2) is False
    assert predict_runs_precision("CPU", "bf16", sapphire) is True
    assert predict_runs_precision("CPU", "f32", avx2) is True
    assert predict_runs_precision("GPU.0", "bf16", sapphire) is None
    assert predict_runs_precision("CPU", "bf16", frozenset()) is None


async def test_a_batch_the_device_refuses_is_a_device_error(tmp_path: Path) -> None:
    """A network compiled for a static batch of 2, handed 3 images: submit raises a retriable
    device_error, nothing is delivered to the callback, and the worker counts the failure and
    no request in flight."""
    core = make_core(tmp_path)
    model = prepared_model(core, locate_weights(None), tmp_path)
    network = compile_network(core, model, DeviceSpec(static_batch=2), max_batch_size=2)
    worker = DeviceWorker(network, asyncio.get_running_loop())
    crops = np.zeros((3, 224, 224, 3), dtype=np.uint8)
    delivered: list[ScoreArray | DeviceError] = []
    with pytest.raises(DeviceError) as refused:
        worker.submit(crops, lambda outcome, _elapsed: delivered.append(outcome))
    assert refused.value.kind == "device_error" and refused.value.retriable
    assert "device CPU refused a batch" in str(refused.value)
    assert delivered == []
    stats = worker.statistics()
    assert (stats.failures, stats.in_flight, stats.batches) == (1, 0, 0)
    # The refusal cost no infer request: the worker still runs a batch it can take.
    scored: asyncio.Future[ScoreArray | DeviceError] = asyncio.get_running_loop().create_future()
    worker.submit(crops[:2], lambda outcome, _elapsed: scored.set_result(outcome))
    outcome = await asyncio.wait_for(scored, 30)
    assert not isinstance(outcome, DeviceError) and len(outcome) == 2


async def test_a_refused_batch_fails_each_of_its_callers_with_device_error(
    tmp_path: Path,
) -> None:
    """Through the scorer: four calls that fill one batch the device refuses (a static batch of
    2 under batches of 4, a pairing ScorerConfig does not check) each get the retriable
    device_error, and the device's statistics count one failed batch."""
    config = scorer_config(
        tmp_path, devices=(DeviceSpec(static_batch=2, num_requests=1),),
        batch=BatchPolicy(max_batch_size=4, max_delay_s=5.0),
    )  # fmt: skip
    images = [(LADDER / name).read_bytes() for name in sorted(REFERENCE)[:4]]
    async with await Scorer.start(config) as scorer:
        relaxed = time.monotonic() + 60  # no deadline pushes a partial batch out early
        outcomes = await asyncio.gather(
            *(scorer.score(image, deadline=relaxed) for image in images), return_exceptions=True
        )
        [device] = scorer.device_statistics()
    assert all(isinstance(outcome, DeviceError) for outcome in outcomes), outcomes
    assert {(e.kind, e.retriable) for e in outcomes if isinstance(e, DeviceError)} == {
        ("device_error", True)
    }
    assert (device.failures, device.batches, device.images) == (1, 0, 0)


async def test_a_device_this_machine_lacks_is_a_device_error_naming_the_devices_here(
    tmp_path: Path,
) -> None:
    """Scorer.start for a device OpenVINO cannot compile for (an NPU on a CPU-only machine, or a
    name no plugin knows) raises device_error listing the devices that do exist."""
    config = scorer_config(tmp_path, devices=(DeviceSpec(name="NOSUCHDEVICE"),))
    with pytest.raises(DeviceError) as raised:
        await Scorer.start(config)
    assert raised.value.kind == "device_error"
    assert "cannot compile open_nsfw for device 'NOSUCHDEVICE'" in str(raised.value)
    assert "devices here: CPU" in str(raised.value)
