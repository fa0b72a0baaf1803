"""The one builder of the tests' scorer configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.scorer import ScorerConfig

__all__ = ["scorer_config"]


def scorer_config(
    cache_dir: Path | None, *, preprocessing: Preprocessing = Preprocessing.EXACT, **overrides: Any
) -> ScorerConfig:
    """A :class:`ScorerConfig` whose compiled models are cached in ``cache_dir`` (None: not at
    all), with the reference (exact) preprocessing unless told otherwise."""
    return ScorerConfig(cache_dir=cache_dir, preprocessing=preprocessing, **overrides)
