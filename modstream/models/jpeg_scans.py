"""Cut a progressive JPEG down to its coarse scans, for fast mode's screening pass.

A progressive JPEG sends the image in several scans: first the DC coefficients, then bands of AC
coefficients, then refinement scans that add the low-order bits. Decoding the whole file costs
about three times a baseline JPEG of the same size (27 ms against 9 ms on 2 MP photos). The screen
only needs the 1/2 to 1/8 scale picture that DCT-domain downscaling produces, so it keeps the DC
scans and the first pass of the low-frequency bands and drops the rest: about 6 ms, and pixels
about one grey level away from the full decode. A score from such a picture is only ever a screen:
anything that could matter is rescored from the full file.

This is a byte-level parser of untrusted input. It returns ``None`` (decode the file as it is)
for anything it does not understand, and every read is bounds-checked.
"""

from __future__ import annotations

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
_SOS = 0xDA
_SOF2 = 0xC2  # progressive, Huffman
_OTHER_SOF = frozenset(
    {0xC0, 0xC1, 0xC3, *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)}
)
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field
_MAX_SEGMENTS = 4096
# Keep AC scans whose band starts at or below this zig-zag index: the 2x2 and 4x4 corners that a
# 1/4 or 1/2 scale decode reads start within the first five AC coefficients.
LOW_BAND_START = 5


def coarse_progressive(data: bytes, low_band_start: int = LOW_BAND_START) -> bytes | None:
    """The file without its high-frequency and refinement AC scans, or ``None`` if not applicable.

    ``None`` for baseline JPEGs, for files that do not parse, and when nothing would be dropped.
    """
    if not data.startswith(_SOI):
        return None
    kept = [_SOI]
    progressive = dropped = False
    position = 2
    for _ in range(_MAX_SEGMENTS):
        if position + 2 > len(data) or data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:
            break
        if marker in _STANDALONE:
            position += 2
            continue
        if position + 4 > len(data):
            return None
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        header_end = position + 2 + length
        if length < 2 or header_end > len(data):
            return None
        if marker == _SOF2:
            progressive = True
        elif marker in _OTHER_SOF:
            return None  # baseline or another coding: nothing to cut, and no need to walk it
        if marker != _SOS:
            kept.append(data[position:header_end])
            position = header_end
            continue
        end = _entropy_end(data, header_end)
        band = _scan_band(data, position, header_end)
        if band is None:
            return None
        start, refinement = band
        if start == 0 or (start <= low_band_start and not refinement):
            kept.append(data[position:end])
        else:
            dropped = True
        position = end
    else:
        return None
    if not (progressive and dropped):
        return None
    kept.append(_EOI)
    return b"".join(kept)


def _scan_band(data: bytes, position: int, header_end: int) -> tuple[int, bool] | None:
    """(Ss, is refinement) of the SOS header at ``position``."""
    components = data[position + 4]
    offset = position + 5 + 2 * components
    if offset + 3 > header_end:
        return None
    start, successive = data[offset], data[offset + 2]
    return start, (successive >> 4) != 0


def _entropy_end(data: bytes, position: int) -> int:
    """Index of the marker that ends the entropy-coded data starting at ``position``."""
    while True:
        found = data.find(b"\xff", position)
        if found < 0 or found + 1 >= len(data):
            return len(data)
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte or restart marker
            position = found + 2
            continue
        return found
