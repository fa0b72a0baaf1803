"""The scorer's configuration: devices, preprocessing, batching, screening and limits.

Built without importing OpenVINO (see :mod:`modstream.models.device_spec`), so a caller can
construct it, and start decoding, before the runtime has loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from modstream.models.decode import DecodeLimits
from modstream.models.device_spec import DeviceSpec, default_cache_dir
from modstream.models.pdq import PdqHashing
from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.batcher import BatchPolicy

__all__ = ["BF16_DECISION_MARGIN", "SCREENING_MODES", "ScorerConfig"]

SCREENING_MODES = ("auto", "always", "adaptive")
# How far a bf16 score on the exact crop may be from the f32 reference, with headroom: the
# largest difference measured was 0.0304 (bench/screen_error.py, route exact-bf16: 552 images,
# the ladders as PNG, JPEG and progressive JPEG, the mixed and photo corpora, on avx512_bf16).
# Such a score farther than this from every threshold of the policy decides as the reference.
BF16_DECISION_MARGIN = 0.05


@dataclass(frozen=True, kw_only=True, slots=True)
class ScorerConfig:
    """Everything the scorer needs; ``deadline`` defaults to now + ``latency_budget_s``."""

    devices: tuple[DeviceSpec, ...] = (DeviceSpec(),)
    preprocessing: Preprocessing = Preprocessing.FAST
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    batch: BatchPolicy = field(default_factory=BatchPolicy)
    latency_budget_s: float = 0.250
    # Fast mode screens with an approximate crop; a screen score at or above this is computed
    # again from the exact crop, so every score that can matter to a decision is exact.
    confirm_at: float = 0.05
    # The active policy's thresholds. With them, and a screen at a cheaper precision, a screen
    # score that reaches confirm_at is scored again on the exact crop at the screen's precision,
    # and once more at the exact precision only when that score lies within decision_margin of
    # a threshold: the final score is exact wherever it could change a decision. Empty: every
    # screen score from confirm_at up is scored again at the exact precision.
    decision_thresholds: tuple[float, ...] = ()
    decision_margin: float = BF16_DECISION_MARGIN
    # Fast mode sends every N-th image down the route it does not prefer, to keep measuring it
    # (:mod:`modstream.pipeline.score.routing`); 0 never explores.
    explore_every: int = 64
    # "auto": fast mode screens where the device has a cheaper screen precision (decided at
    # start-up, the same for every image); "always": it screens every image; "adaptive": a
    # RoutePlanner chooses per image (see the module docstring).
    screening: str = "auto"
    # Precision of the fast-mode screen where the device supports it; the exact lane keeps each
    # device's own precision (f32 by default). bf16 halves CPU inference time on CPUs that have it
    # and moves screen scores by well under the confirmation floor.
    screen_precision: str | None = "bf16"
    # The PDQ hash of every image, from its first decode (``dihedral``: and of its 7 rotations
    # and mirrors, for hash banks that match those); "off" where nothing reads it (eval).
    pdq: PdqHashing = PdqHashing.PLAIN
    # One more decode thread than cores: a thread waiting on file or socket I/O leaves a core idle.
    decode_workers: int = field(default_factory=lambda: (os.cpu_count() or 2) + 1)
    max_pending: int = 64
    admission_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    weights_path: Path | None = None

    def __post_init__(self) -> None:
        if not self.devices:
            raise ValueError("at least one device is required")
        if self.decode_workers < 1 or self.max_pending < 1:
            raise ValueError("decode_workers and max_pending must be at least 1")
        if self.screening not in SCREENING_MODES:
            raise ValueError(
                f"screening must be one of {', '.join(SCREENING_MODES)}, not {self.screening!r}"
            )
        if not 0.0 <= self.confirm_at <= 1.0:
            raise ValueError(f"confirm_at {self.confirm_at} is outside 0..1")
        if self.decision_margin < 0 or not all(0 <= t <= 1 for t in self.decision_thresholds):
            raise ValueError("decision thresholds lie in 0..1 and the margin is not negative")
