"""Decode untrusted video bytes (MP4, MOV, WebM) into a few sampled frames, safely.

This sits beside :mod:`modstream.models.decode` in the decode stage: bytes that
:func:`sniff_video` recognises come here instead of to PIL, and :func:`decode_video` hands the
scorer a handful of RGB frames, each scaled to the size the network scores. FFmpeg (through PyAV)
demuxes from memory only: it is given a file object over the bytes, the demuxer named by the
sniffed kind, external references switched off, and an opener for further files that refuses
every one. Containers and codecs are allow-listed; the duration and the coded frame size are
checked before any frame is decoded; memory holds one decoded frame at a time plus the sampled,
already scaled ones; every FFmpeg error is mapped to :mod:`modstream.errors` here.

Sampling (:func:`sample_times`) is a pure function of the duration and the limits.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import NoReturn

import av
import av.error
from av.codec.context import CodecContext
from av.container import InputContainer
from av.video.frame import VideoFrame as AvFrame
from av.video.stream import VideoStream
from PIL import Image

from modstream.errors import (
    DecodeFailed,
    DecodeTimeout,
    DecompressionBomb,
    ImageError,
    NotAnImage,
    TooLong,
    TruncatedImage,
    UnsupportedCodec,
)
from modstream.media import sniff
from modstream.models.decode import VideoLimits

# The demuxer FFmpeg is told to use for each sniffed kind, and the names a demuxer may report
# for it: FFmpeg's ISO BMFF demuxer is "mov,mp4,m4a,3gp,3g2,mj2", Matroska's "matroska,webm".
DEMUXERS: dict[str, str] = {"mp4": "mp4", "mov": "mov", "webm": "webm"}
ALLOWED_DEMUXER_NAMES: dict[str, frozenset[str]] = {
    "mp4": frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}),
    "mov": frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}),
    "webm": frozenset({"matroska", "webm"}),
}
# Video codecs with maintained decoders that cameras, phones and browsers produce. Anything else
# (MJPEG, FFV1, ProRes, the long tail of old codecs FFmpeg still parses) is refused unread.
ALLOWED_CODECS: frozenset[str] = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"})

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE = 0x4282

# After a seek, decode at most this many frames looking for the target before taking the frame
# reached. Encoders put keyframes up to 250 frames apart (x264's default), so a seek can land
# that far before its target: 48 left a 30 s clip with 12 distinct samples out of 32, all near
# keyframes (an explicit stretch between two keyframes could be missed). The time budget
# (max_decode_s) bounds the work either way.
MAX_FRAMES_PER_SEEK = 600
# A target this many frames ahead of the decoder is reached by decoding on, not by seeking back
# to a keyframe it may already have passed (with long GOPs, sequential decoding is cheaper than
# repeated seeks: a 30 s 720p clip's 32 samples took 0.58 s this way, 0.75 s seeking).
DECODE_ON_FRAMES = 300


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One sampled frame: RGB, long side at most ``scored_side``, and where it sits in the video."""

    image: Image.Image
    index: int
    offset_s: float


@dataclass(frozen=True, slots=True)
class DecodedVideo:
    """The sampled frames of one video (time order, at least one) and what its header said."""

    frames: tuple[VideoFrame, ...]
    container: str
    codec: str
    width: int
    height: int
    duration_s: float
    total_frames: int | None


def sniff_video(data: bytes) -> str | None:
    """Name the container of ``data`` from its first bytes: "mp4", "mov", "webm" or ``None``."""
    medium = sniff(data[:16])
    if medium is None or medium.name not in ("MP4", "MOV", "WEBM"):
        return None  # a still (HEIF and AVIF boxes included) goes to the image decoder
    if medium.name == "WEBM" and _ebml_doctype(data) not in (b"webm", b"matroska"):
        return None  # EBML, but not a Matroska document
    return medium.name.lower()


def sample_times(duration_s: float, limits: VideoLimits) -> tuple[float, ...]:
    """Evenly spaced sample times over ``[0, duration_s)``, starting at 0.

    Clips shorter than a minute get up to ``max_frames`` samples; longer ones
    ``frames_per_minute`` per minute, never more than ``max_frames``, never fewer than one.
    """
    if not duration_s > 0 or not math.isfinite(duration_s):
        return (0.0,)
    if duration_s < 60.0:
        count = limits.max_frames
    else:
        per_minute = math.ceil(duration_s / 60.0 * limits.frames_per_minute)
        count = min(limits.max_frames, max(1, per_minute))
    return tuple(i * duration_s / count for i in range(count))


def decode_video(data: bytes, limits: VideoLimits) -> DecodedVideo:
    """Demux ``data`` from memory and return frames sampled at :func:`sample_times`.

    Raises a :class:`~modstream.errors.ImageError` subclass, never an FFmpeg exception. A file
    damaged part way returns the frames decoded before the damage (at least one); one with no
    decodable frame is ``truncated`` or ``decode_failed``.
    """
    kind = sniff_video(data)
    if kind is None:
        raise NotAnImage("the body is not a video in a supported container (MP4, MOV, WebM)")
    started = time.monotonic()
    try:
        container = av.open(
            io.BytesIO(data),
            mode="r",
            format=DEMUXERS[kind],
            options=_demuxer_options(kind),
            metadata_errors="replace",
            io_open=_refuse_other_files,
            # FFmpeg's interrupt callback bounds the probing inside open and each later read.
            timeout=limits.max_decode_s,
        )
    except av.FFmpegError as exc:
        if kind in ("mp4", "mov") and _boxes_overrun(data):
            raise TruncatedImage(f"the {kind} file is cut short: {exc}") from exc
        _raise_mapped(exc, "cannot open the video")
    with container:
        try:
            return _decode_open(container, kind, limits, started)
        except ImageError:
            raise
        except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
            _raise_mapped(exc, "cannot decode the video")


def _demuxer_options(kind: str) -> dict[str, str]:
    if kind in ("mp4", "mov"):
        # Both are FFmpeg's defaults; stated so that a changed default cannot make the demuxer
        # open a file that a "dref" atom names.
        return {"enable_drefs": "0", "use_absolute_path": "0"}
    return {}


def _refuse_other_files(url: str, flags: int, options: dict[str, str]) -> NoReturn:
    # FFmpeg calls this for any file beyond the one it was given (drefs, playlists, segments).
    raise PermissionError(f"the video refers to another file ({url!r}); refused")


def _decode_open(
    container: InputContainer, kind: str, limits: VideoLimits, started: float
) -> DecodedVideo:
    reported = set(container.format.name.split(","))
    if not reported & ALLOWED_DEMUXER_NAMES[kind]:
        raise UnsupportedCodec(f"the {kind} bytes were read as {container.format.name!r}; refused")
    if not container.streams.video:
        raise NotAnImage(f"the {kind} file has no video stream")
    stream = container.streams.video[0]
    context: CodecContext | None = stream.codec_context  # None: FFmpeg has no decoder for it
    if context is None:
        raise UnsupportedCodec("the video stream's codec is unknown or has no decoder; refused")
    codec = context.codec.canonical_name
    if codec not in ALLOWED_CODECS:
        allowed = ", ".join(sorted(ALLOWED_CODECS))
        raise UnsupportedCodec(f"the video codec {codec!r} is not supported ({allowed})")
    width, height = stream.width, stream.height
    _check_pixels(width, height, limits, when="before decoding")
    duration_s = _duration_s(container, stream)
    if duration_s is not None and duration_s > limits.max_duration_s:
        raise TooLong(
            f"the video claims {duration_s:.1f} s, more than the {limits.max_duration_s:g} s "
            "limit; refused before decoding"
        )
    fps = _frame_rate(stream)
    total_frames = stream.frames or None
    if total_frames is None and duration_s is not None and fps is not None:
        total_frames = max(1, round(duration_s * fps))
    # With no duration claimed, sample as if the video ran to the cap; sampling stops at its end.
    times = sample_times(duration_s if duration_s else limits.max_duration_s, limits)
    sampler = _Sampler(container, stream, limits, started, fps)
    frames = sampler.sample(times)
    return DecodedVideo(
        frames=frames,
        container=kind,
        codec=codec,
        width=width,
        height=height,
        duration_s=duration_s if duration_s is not None else sampler.last_time_s,
        total_frames=total_frames,
    )


class _Sampler:
    """Walks one stream of one open container, decoding forward and seeking where it pays."""

    def __init__(
        self,
        container: InputContainer,
        stream: VideoStream,
        limits: VideoLimits,
        started: float,
        fps: float | None,
    ) -> None:
        self._container = container
        self._stream = stream
        self._limits = limits
        self._deadline = started + limits.max_decode_s
        self._fps = fps
        self._time_base = stream.time_base or Fraction(1, 1000)
        self._start_pts = stream.start_time or 0
        self._frames: Iterator[AvFrame] | None = None
        self._current: tuple[AvFrame, float] | None = None
        self._ended = False
        self.last_time_s = 0.0

    def sample(self, times: tuple[float, ...]) -> tuple[VideoFrame, ...]:
        picked: list[VideoFrame] = []
        seen: set[int] = set()
        for target in times:
            try:
                found = self._frame_at(target)
            except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
                if picked:
                    break  # damaged after some frames decoded: score those
                raise _mapped(exc, "cannot decode the video") from exc
            if found is None:
                break
            frame, offset_s = found
            index = self._index(offset_s, len(picked))
            if index in seen:
                continue
            seen.add(index)
            picked.append(VideoFrame(self._to_image(frame), index, offset_s))
            if len(picked) >= self._limits.max_frames:
                break
        if not picked:
            raise TruncatedImage("the video ends before its first decodable frame")
        return tuple(picked)

    def _frame_at(self, target_s: float) -> tuple[AvFrame, float] | None:
        """The first frame at or after ``target_s`` (or the last before the stream ends)."""
        current = self._current
        if current is not None and current[1] >= target_s:
            return current
        if self._ended and current is not None:
            return None  # the stream ended before this target
        frames_ahead = (target_s - current[1]) * self._fps if current and self._fps else math.inf
        if self._frames is None or frames_ahead > DECODE_ON_FRAMES:
            self._seek(target_s)
        assert self._frames is not None
        for _ in range(MAX_FRAMES_PER_SEEK):
            frame = next(self._frames, None)
            self._check_clock()
            if frame is None:
                self._ended = True
                return self._current
            self._check_frame(frame)
            offset_s = self._offset_s(frame)
            self._current = (frame, offset_s)
            self.last_time_s = max(self.last_time_s, offset_s)
            if offset_s >= target_s:
                return self._current
        return self._current  # bounded: the frame reached stands in for the target

    def _seek(self, target_s: float) -> None:
        offset = self._start_pts + int(target_s / self._time_base)
        if self._frames is not None or target_s > 0:
            self._container.seek(offset, backward=True, any_frame=False, stream=self._stream)
        self._frames = self._container.decode(self._stream)
        self._current = None
        self._ended = False

    def _offset_s(self, frame: AvFrame) -> float:
        if frame.pts is None:
            previous = self._current[1] if self._current else 0.0
            return previous + (1.0 / self._fps if self._fps else 0.0)
        offset_s = float((frame.pts - self._start_pts) * self._time_base)
        if offset_s > self._limits.max_duration_s:
            raise TooLong(
                f"the video runs past {offset_s:.1f} s, more than the "
                f"{self._limits.max_duration_s:g} s limit"
            )
        return max(0.0, offset_s)

    def _index(self, offset_s: float, position: int) -> int:
        return round(offset_s * self._fps) if self._fps else position

    def _check_clock(self) -> None:
        if time.monotonic() > self._deadline:
            raise DecodeTimeout(
                f"decoding the video took more than {self._limits.max_decode_s:g} s"
            )

    def _check_frame(self, frame: AvFrame) -> None:
        # VP9 and others may change size mid-stream: every decoded frame is checked too.
        _check_pixels(frame.width, frame.height, self._limits, when="while decoding")

    def _to_image(self, frame: AvFrame) -> Image.Image:
        width, height = _scaled(frame.width, frame.height, self._limits.scored_side)
        rgb = frame.reformat(width=width, height=height, format="rgb24")
        # to_ndarray is typed in PyAV's stubs (to_image is not); rgb24 is height x width x 3.
        return Image.fromarray(rgb.to_ndarray())


def _check_pixels(width: int, height: int, limits: VideoLimits, *, when: str) -> None:
    if width * height > limits.max_frame_pixels:
        raise DecompressionBomb(
            f"the video's frames are {width}x{height} = {width * height} pixels, more than the "
            f"{limits.max_frame_pixels}-pixel limit; refused {when}"
        )


def _duration_s(container: InputContainer, stream: VideoStream) -> float | None:
    """The longer of the container's and the stream's claimed duration, if either claims one."""
    claims: list[float] = []
    if container.duration is not None and container.duration > 0:
        claims.append(container.duration / av.time_base)
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        claims.append(float(stream.duration * stream.time_base))
    return max(claims) if claims else None


def _frame_rate(stream: VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


def _scaled(width: int, height: int, side: int) -> tuple[int, int]:
    long_side = max(width, height)
    if long_side <= side:
        return width, height
    scale = side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def _mapped(exc: BaseException, context: str) -> ImageError:
    text = str(exc)
    if isinstance(exc, av.error.ExitError):
        return DecodeTimeout(f"{context}: FFmpeg was interrupted: {text}")
    if isinstance(exc, av.error.DecoderNotFoundError):
        return UnsupportedCodec(f"{context}: no decoder: {text}")
    if isinstance(exc, EOFError) or "moov atom not found" in text or "truncat" in text.lower():
        return TruncatedImage(f"{context}: the data ends early: {text}")
    return DecodeFailed(f"{context}: {text}")


def _raise_mapped(exc: BaseException, context: str) -> NoReturn:
    raise _mapped(exc, context) from exc


def _boxes_overrun(data: bytes) -> bool:
    """Whether a top-level ISO BMFF box claims more bytes than the file has (a cut file)."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1 and pos + 16 <= len(data):
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if size == 0:
            return False  # "to the end of the file"
        box_type = data[pos + 4 : pos + 8]
        if size < 8 or not all(48 <= c <= 57 or 97 <= c <= 122 or c == 32 for c in box_type):
            return False  # not a box structure at all: garbage, not a cut
        pos += size
    return pos > len(data)


def _ebml_doctype(data: bytes) -> bytes | None:
    """The DocType of the EBML header at the start of ``data``, read without allocation."""
    pos = len(_EBML_MAGIC)
    header_size, pos = _ebml_vint(data, pos, keep_marker=False)
    if header_size is None:
        return None
    end = min(len(data), pos + header_size, 4096)
    while pos < end:
        element, pos = _ebml_vint(data, pos, keep_marker=True)
        size, pos = _ebml_vint(data, pos, keep_marker=False)
        if element is None or size is None:
            return None
        if element == _EBML_DOCTYPE:
            return data[pos : pos + size].rstrip(b"\x00")
        pos += size
    return None


def _ebml_vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int | None, int]:
    if pos >= len(data) or data[pos] == 0:
        return None, pos
    first = data[pos]
    length = 8 - first.bit_length() + 1
    if pos + length > len(data):
        return None, pos
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, pos + length
