"""Which precisions a CPU runs natively, read from its feature flags without importing OpenVINO.

OpenVINO answers this authoritatively (``OPTIMIZATION_CAPABILITIES``, see
:func:`modstream.models.network.runs_precision`), but only once it is imported, about 0.4 s into
a run. The scorer decides how to decode its first images before then, so it predicts the answer
from the flags OpenVINO's CPU plugin keys bf16 on (AVX512_BF16, AMX-BF16), and checks the
prediction against OpenVINO's answer when it arrives.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["cpu_flags", "predict_runs_precision"]

_NATIVE_FLAGS = {
    "bf16": frozenset({"avx512_bf16", "amx_bf16"}),
    "f16": frozenset({"avx512_fp16", "amx_fp16"}),
}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The ``flags`` of the first CPU in ``/proc/cpuinfo``; empty where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _colon, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def predict_runs_precision(
    device: str, precision: str, flags: frozenset[str] | None = None
) -> bool | None:
    """Whether ``device`` runs ``precision`` natively, or ``None`` when only OpenVINO can tell
    (a device other than the CPU, an unknown precision, no flags to read)."""
    if device.upper() != "CPU":
        return None
    wanted = precision.lower()
    if wanted == "f32":
        return True
    native = _NATIVE_FLAGS.get(wanted)
    flags = cpu_flags() if flags is None else flags
    if native is None or not flags:
        return None
    return bool(native & flags)
