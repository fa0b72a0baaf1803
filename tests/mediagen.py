"""Generated animations and videos with one explicit picture among safe ones.

The pictures are score-ladder images (``syn_14_0.png`` safe at 0.02, ``syn_11_5.png`` at 0.98);
the animations are written by Pillow, the videos by PyAV, all at test time.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from fractions import Fraction

import av
import locations
import numpy as np
from PIL import Image

SAFE = Image.open(locations.LADDER / "syn_14_0.png").convert("RGB")
HOT = Image.open(locations.LADDER / "syn_11_5.png").convert("RGB")


def animation(fmt: str, *, frames: int = 9, hot_at: int = 4, size: int = 256) -> bytes:
    """``frames`` frames of 100 ms, the one at ``hot_at`` explicit, the others safe; safe frames
    are tinted by a grey level each so the encoder keeps them apart."""
    pictures = []
    for index in range(frames):
        picture = (HOT if index == hot_at else SAFE).resize((size, size))
        if index != hot_at:
            picture = Image.eval(picture, lambda v, i=index: min(255, v + i))
        pictures.append(picture)
    buffer = io.BytesIO()
    # Lossless WebP: Pillow's default lossy encoding moves the explicit frame's score by 0.4.
    extra = {"lossless": True} if fmt == "WEBP" else {}
    pictures[0].save(buffer, format=fmt, save_all=True, append_images=pictures[1:],
                     duration=100, loop=0, **extra)  # fmt: skip
    return buffer.getvalue()


def video(container: str = "mp4", *, seconds: float = 4.0, fps: int = 10,
          hot_from_s: float = 2.0, hot_to_s: float = 2.5, size: int = 256) -> bytes:  # fmt: skip
    """A clip of the safe picture with the explicit one shown from ``hot_from_s`` to
    ``hot_to_s``: H.264 in MP4, or VP9 in WebM."""
    safe = np.asarray(SAFE.resize((size, size)))
    hot = np.asarray(HOT.resize((size, size)))
    frames = (
        hot if hot_from_s <= index / fps < hot_to_s else safe
        for index in range(round(seconds * fps))
    )
    return encode(frames, fps=fps, container=container)


def encode(frames: Iterable[np.ndarray], *, fps: int, container: str = "mp4") -> bytes:
    """RGB frames, all of one size, as a clip at ``fps``: H.264 in MP4, or VP9 in WebM."""
    codec = {"mp4": "libx264", "webm": "libvpx-vp9"}[container]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = None
        for index, pixels in enumerate(frames):
            if stream is None:
                stream = output.add_stream(codec, rate=fps)
                stream.height, stream.width = pixels.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.time_base = Fraction(1, fps)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                output.mux(packet)
        if stream is not None:
            for packet in stream.encode(None):
                output.mux(packet)
    return buffer.getvalue()
