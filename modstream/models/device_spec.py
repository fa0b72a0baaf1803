"""How to compile the network for a device, and where compiled networks are cached.

Kept apart from :mod:`modstream.models.network` so that configuration can be built without
importing OpenVINO (a quarter of a second that ``modstream score`` overlaps with decoding).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceSpec:
    """How to compile the network for one device worker.

    ``name`` is passed to OpenVINO as it is: ``CPU``, ``GPU.1``, ``NPU``, ``AUTO:GPU,CPU``, or
    ``MYRIAD`` for users on OpenVINO 2022.3 with Movidius sticks. ``precision`` is applied as
    ``INFERENCE_PRECISION_HINT`` where the device supports it: OpenVINO picks bf16 by itself on CPUs
    with AVX512_BF16 or AMX, which moves ladder scores by up to 0.03, so modstream asks for f32
    unless told otherwise.

    ``LATENCY`` (one stream using every core) is the default: modstream forms its own batches, and
    on small CPUs several streams per network only fight the decode threads for the same cores
    (see docs/benchmarks.md). ``cpu_pinning`` is off for the same reason: pinned inference threads
    cannot make room for decoding. Large CPUs may prefer ``THROUGHPUT``.
    """

    name: str = "CPU"
    performance_hint: str = "LATENCY"
    cpu_pinning: bool | None = False
    precision: str | None = "f32"
    num_requests: int | None = None
    static_batch: int | None = None
    properties: tuple[tuple[str, str], ...] = ()  # any other OpenVINO properties, passed through


def default_cache_dir() -> Path:
    explicit = os.environ.get("MODSTREAM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modstream" / "openvino"
