"""What the devices report, checked against what they compile (real OpenVINO on the CPU)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modstream.models.capabilities import predict_runs_precision
from modstream.models.device_spec import DeviceSpec
from modstream.models.network import compile_network, make_core, prepared_model, runs_precision
from modstream.models.weights import locate_weights


@pytest.mark.parametrize("precision", ["bf16", "f16", "f32"])
def test_the_capability_probe_agrees_with_the_precision_the_cpu_compiles(
    precision: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """``runs_precision`` answers, before compiling, whether the hint will be honoured: the
    start-up decision of ``screening="auto"`` rests on it."""
    core = make_core(tmp_path)
    model = prepared_model(core, locate_weights(None), tmp_path)
    network = compile_network(core, model, DeviceSpec(precision=precision), max_batch_size=1)
    reported = runs_precision(core, "CPU", precision)
    record_property("cpu_path", f"OpenVINO reports {precision}: {reported}; "
                                f"a {precision} hint compiled {network.precision}")  # fmt: skip
    assert runs_precision(core, "CPU", precision) == (network.precision == precision), (
        network.precision
    )


def test_virtual_devices_and_unknown_precisions_are_never_cheaper() -> None:
    core = make_core(None)
    assert not runs_precision(core, "AUTO:CPU", "bf16")
    assert not runs_precision(core, "CPU", "q4")


@pytest.mark.parametrize("precision", ["bf16", "f16", "f32"])
def test_the_cpu_flags_predict_what_openvino_answers(
    precision: str, record_property: Callable[[str, object], None]
) -> None:
    """The prediction that routes the first images (before OpenVINO loads) matches OpenVINO's
    own answer on this CPU, or abstains."""
    predicted = predict_runs_precision("CPU", precision)
    answer = runs_precision(make_core(None), "CPU", precision)
    record_property("cpu_path", f"the flags predict {precision}: {predicted}, OpenVINO: {answer}")
    assert predicted in (None, answer)


def test_predictions_from_flags() -> None:
    avx2 = frozenset({"sse4_2", "avx2", "fma"})
    sapphire = avx2 | {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert predict_runs_precision("CPU", "bf16", avx2) is False
    assert predict_runs_precision("CPU", "bf16", sapphire) is True
    assert predict_runs_precision("CPU", "f32", avx2) is True
    assert predict_runs_precision("GPU.0", "bf16", sapphire) is None
    assert predict_runs_precision("CPU", "bf16", frozenset()) is None
