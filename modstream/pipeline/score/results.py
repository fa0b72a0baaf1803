"""What scoring one image produces: the score, the model that gave it, and where time went."""

from __future__ import annotations

from dataclasses import dataclass

from modstream.models.pdq import PdqHash


@dataclass(frozen=True, kw_only=True, slots=True)
class Timings:
    """Seconds spent in each stage for one image; ``total_s`` is from submission to result."""

    decode_s: float
    queue_s: float
    infer_s: float
    total_s: float
    batch_size: int
    read_s: float = 0.0  # reading a file given by path (reported by the caller that gave it)

    def as_ms(self) -> dict[str, float | int]:
        return {
            "decode": round(self.decode_s * 1000, 3),
            "queue": round(self.queue_s * 1000, 3),
            "infer": round(self.infer_s * 1000, 3),
            "total": round(self.total_s * 1000, 3),
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class FrameSummary:
    """How an animation or a video was scored: its frames, the worst one, each frame's score."""

    total: int  # frames the item has (for a video: as its stream reports them)
    scored: int
    worst_index: int
    worst_offset_s: float
    scores: tuple[float, ...]

    def fields(self) -> dict[str, object]:
        return {
            "total": self.total, "scored": self.scored, "worst_index": self.worst_index,
            "worst_offset_s": round(self.worst_offset_s, 3),
            "scores": [round(score, 6) for score in self.scores],
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class ScoreResult:
    nsfw: float
    model: str
    device: str
    precision: str
    preprocessing: str  # the mode that produced the final score: "exact" or "fast"
    sha256: str
    width: int
    height: int
    format: str
    timings: Timings
    pdq: PdqHash | None = None  # unless the scorer was asked not to hash
    frames: FrameSummary | None = None  # an animation or a video (its score is the worst frame's)
