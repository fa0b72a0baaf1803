"""Exact Hamming search over banks of 256-bit PDQ hashes: which banked hashes lie near a query.

A bank's hashes are packed rows of 32 bytes in ``np.packbits`` order (bit 0 of a hash is the most
significant bit of byte 0). A lookup returns *every* row within ``max_distance`` bits, never an
approximation: a missed match is known content let through, a false one is a wrong takedown.

Two code paths, chosen per lookup by :func:`lookup_path` (a pure function of the bank size and
the distance):

* **Multi-index hashing** (Norouzi, Punjani and Fleet, "Fast search in Hamming space with
  multi-index hashing", CVPR 2012). The 256 bits are cut into 16 chunks of 16 bits. If two hashes
  differ in at most ``d`` bits, at least one chunk differs in at most ``r = d // 16`` bits (were
  all 16 chunks to differ in ``r + 1`` or more, the hashes would differ in ``16 (r + 1) > d``).
  Each chunk keeps its rows sorted by the chunk's value (a CSR table: ``order`` and ``starts``),
  so the candidates are the rows in the buckets of the query's chunk XOR every 16-bit mask of at
  most ``r`` bits, and each candidate is then verified exactly. At ``d = 31`` (``r = 1``) that is
  17 buckets per chunk: about 4,000 candidates out of a million random rows.
* **A linear scan**: XOR and popcount against every row. It wins on small banks, where the
  tables' fixed cost dominates, and from ``r = 3`` on, where the 697 keys per chunk gather a
  large share of the bank as candidates.

Where it sits: the matching stage hashes an image (PDQ) and asks this index which banked hashes
are near; the banks and the matcher around it are built on top of it.
"""

from __future__ import annotations

import enum
import itertools
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "HASH_BYTES",
    "MAX_DISTANCE",
    "MULTI_INDEX_MAX_RADIUS",
    "MULTI_INDEX_MIN_ROWS",
    "HashIndex",
    "LookupPath",
    "lookup_path",
]

HASH_BYTES: Final = 32
MAX_DISTANCE: Final = 255  # a distance of 256 would match everything: no lookup asks for it
CHUNKS: Final = 16
CHUNK_VALUES: Final = 1 << 16
# Measured on a 2-core AMD EPYC (median of 200 random queries): at d = 31 a scan of 2,000 rows
# takes 21 µs and of 4,096 rows 35 µs, a multi-index lookup 25 µs at either size; at d = 47
# (r = 2, 137 keys a chunk) the lookup costs 48 µs and overtakes the scan between 4,096 and 8,192
# rows. Below the crossover the scan is as fast and the index saves its 8 MB of offsets.
MULTI_INDEX_MIN_ROWS: Final = 4096
# From r = 3 on (697 keys a chunk, 11,152 buckets) the candidates are a large share of the bank:
# on 100 k random rows a lookup at d = 63 takes 1.2 ms against the scan's 0.84 ms; on 1 M it
# wins (4.6 ms on ~170 k candidates against 8.4 ms) but is far from the budget the tables are
# for, so a radius-3 path would buy less than 2x. The scan is the one path from there.
MULTI_INDEX_MAX_RADIUS: Final = 2

Rows = npt.NDArray[np.int64]
Distances = npt.NDArray[np.int64]


class LookupPath(enum.StrEnum):
    MULTI_INDEX = "multi_index"
    LINEAR = "linear"


def lookup_path(
    rows: int, max_distance: int, *, multi_index_min_rows: int = MULTI_INDEX_MIN_ROWS
) -> LookupPath:
    """How a lookup at ``max_distance`` in a bank of ``rows`` hashes is answered: by the chunk
    tables when the bank holds at least ``multi_index_min_rows`` (twice that at radius 2, whose
    137 keys a chunk cost more per lookup) and the radius is at most 2; else by a scan."""
    radius = max_distance // CHUNKS
    if radius > MULTI_INDEX_MAX_RADIUS:
        return LookupPath.LINEAR
    needed = multi_index_min_rows * 2 if radius == MULTI_INDEX_MAX_RADIUS else multi_index_min_rows
    return LookupPath.MULTI_INDEX if rows >= needed else LookupPath.LINEAR


def _masks(radius: int) -> npt.NDArray[np.uint16]:
    """Every 16-bit mask with at most ``radius`` bits set, the zero mask first."""
    masks = [0]
    for bits in range(1, radius + 1):
        for positions in itertools.combinations(range(16), bits):
            masks.append(sum(1 << position for position in positions))
    return np.array(masks, dtype=np.uint16)


_MASKS: Final = tuple(_masks(radius) for radius in range(MULTI_INDEX_MAX_RADIUS + 1))

if hasattr(np, "bitwise_count"):  # numpy >= 2.0: one popcount instruction per word

    def _popcount(words: npt.NDArray[np.uint64]) -> Distances:
        """Set bits per row of (k, 4) uint64 words."""
        counts = np.bitwise_count(words)
        # Adding the four columns is twice as fast as a reduction along axis 1.
        return counts[:, 0].astype(np.int64) + counts[:, 1] + counts[:, 2] + counts[:, 3]

else:  # pragma: no cover - numpy 1.26 has no bitwise_count
    _BYTE_BITS: Final = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)

    def _popcount(words: npt.NDArray[np.uint64]) -> Distances:
        """Set bits per row of (k, 4) uint64 words, a byte at a time."""
        counts: Distances = _BYTE_BITS[words.view(np.uint8)].sum(axis=1, dtype=np.int64)
        return counts


# Rows scanned per block: a block's XOR and popcount stay in the L2 cache.
_SCAN_BLOCK: Final = 1 << 15


def _check_distance(max_distance: int) -> int:
    if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer):
        raise ValueError(f"max_distance must be an integer, not {type(max_distance).__name__}")
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max_distance must be in 0..{MAX_DISTANCE}, not {max_distance}")
    return int(max_distance)


def _check_query(query: np.ndarray) -> npt.NDArray[np.uint64]:
    if not isinstance(query, np.ndarray) or query.dtype != np.uint8:
        raise ValueError("a query must be a uint8 numpy array")
    if query.shape != (HASH_BYTES,):
        raise ValueError(f"a query must have shape ({HASH_BYTES},), not {query.shape}")
    return np.ascontiguousarray(query).view(np.uint64)


def _sorted_hits(rows: Rows, distances: Distances) -> tuple[Rows, Distances]:
    order = np.lexsort((rows, distances))
    return rows[order], distances[order]


class HashIndex:
    """Exact Hamming search over packed 256-bit hashes (rows of 32 uint8, big-endian bit order:
    bit 0 of the hash is the most significant bit of byte 0, as `np.packbits` lays them out).

    Build it once with :meth:`build` (the bank is copied, so the caller may reuse its array);
    lookups only read, so one index serves many threads."""

    __slots__ = ("_multi_index_min_rows", "_order", "_packed", "_starts")

    def __init__(
        self,
        packed: npt.NDArray[np.uint64],
        order: npt.NDArray[np.int32] | None,
        starts: npt.NDArray[np.int64] | None,
        multi_index_min_rows: int,
    ) -> None:
        """Use :meth:`build`; this takes the arrays it makes as they are."""
        self._packed = packed
        self._order = order
        self._starts = starts
        self._multi_index_min_rows = multi_index_min_rows

    @classmethod
    def build(
        cls, hashes: np.ndarray, *, multi_index_min_rows: int = MULTI_INDEX_MIN_ROWS
    ) -> HashIndex:
        """Index ``hashes``, an (n, 32) uint8 array (n may be 0). The chunk tables are built only
        when the bank is large enough for :func:`lookup_path` to use them
        (``multi_index_min_rows``; the tests lower it to exercise both paths on one bank)."""
        if not isinstance(hashes, np.ndarray) or hashes.dtype != np.uint8:
            raise ValueError("hashes must be a uint8 numpy array")
        if hashes.ndim != 2 or hashes.shape[1] != HASH_BYTES:
            raise ValueError(f"hashes must have shape (n, {HASH_BYTES}), not {hashes.shape}")
        rows = hashes.shape[0]
        if rows > np.iinfo(np.int32).max:
            raise ValueError(f"an index holds at most {np.iinfo(np.int32).max} rows, not {rows}")
        packed = np.array(hashes, dtype=np.uint8, order="C", copy=True).view(np.uint64)
        if rows < multi_index_min_rows:
            return cls(packed, None, None, multi_index_min_rows)
        # Chunk c is bytes 2c and 2c+1 read big-endian: bits 16c..16c+15 of the hash.
        chunks = packed.view(np.uint8).view(">u2")
        order = np.empty((CHUNKS, rows), dtype=np.int32)
        starts = np.empty((CHUNKS, CHUNK_VALUES + 1), dtype=np.int64)
        for chunk in range(CHUNKS):
            values = chunks[:, chunk].astype(np.uint16)
            # A stable sort of uint16 is a radix sort in numpy: linear in the rows, so 10 M build.
            order[chunk] = np.argsort(values, kind="stable")
            starts[chunk, 0] = 0
            np.cumsum(np.bincount(values, minlength=CHUNK_VALUES), out=starts[chunk, 1:])
            # Offsets into the flattened order, so one gather serves all 16 chunks.
            starts[chunk] += chunk * rows
        return cls(packed, order.reshape(-1), starts, multi_index_min_rows)

    def __len__(self) -> int:
        return int(self._packed.shape[0])

    def __repr__(self) -> str:
        tables = "multi-index" if self._order is not None else "linear only"
        return f"HashIndex(rows={len(self)}, {tables}, nbytes={self.nbytes})"

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays (the packed rows and, if built, the chunk tables)."""
        tables = 0
        if self._order is not None and self._starts is not None:
            tables = self._order.nbytes + self._starts.nbytes
        return int(self._packed.nbytes) + tables

    def path(self, max_distance: int) -> LookupPath:
        """The code path a lookup at ``max_distance`` takes in this index."""
        if self._order is None:
            return LookupPath.LINEAR
        return lookup_path(len(self), max_distance, multi_index_min_rows=self._multi_index_min_rows)

    def search(self, query: np.ndarray, max_distance: int) -> tuple[Rows, Distances]:
        """Rows (int64) and distances (int64) of every hash within ``max_distance`` bits of
        ``query`` (inclusive), sorted by distance, then row. ``query`` is (32,) uint8."""
        words = _check_query(query)
        distance = _check_distance(max_distance)
        rows, distances = self._within(words, distance)
        return _sorted_hits(rows, distances)

    def nearest(self, query: np.ndarray, max_distance: int) -> tuple[int, int] | None:
        """``(row, distance)`` of the closest hash within ``max_distance``, the lowest row among
        equally close ones; ``None`` when nothing is that close."""
        words = _check_query(query)
        distance = _check_distance(max_distance)
        rows, distances = self._within(words, distance)
        if rows.size == 0:
            return None
        # Both paths give rows in ascending order, so argmin's first minimum is the lowest row.
        best = int(np.argmin(distances))
        return int(rows[best]), int(distances[best])

    def search_many(self, queries: np.ndarray, max_distance: int) -> list[tuple[Rows, Distances]]:
        """:meth:`search` for each row of an (k, 32) uint8 array of queries."""
        if not isinstance(queries, np.ndarray) or queries.ndim != 2:
            raise ValueError(f"queries must be a (k, {HASH_BYTES}) uint8 numpy array")
        return [self.search(query, max_distance) for query in queries]

    def _within(self, query: npt.NDArray[np.uint64], max_distance: int) -> tuple[Rows, Distances]:
        """Every row within ``max_distance``, in ascending row order (unsorted by distance)."""
        if self.path(max_distance) is LookupPath.MULTI_INDEX:
            return self._multi_index(query, max_distance)
        return self._scan(query, max_distance)

    def _scan(self, query: npt.NDArray[np.uint64], max_distance: int) -> tuple[Rows, Distances]:
        found_rows: list[Rows] = []
        found_distances: list[Distances] = []
        for first in range(0, len(self), _SCAN_BLOCK):
            distances = _popcount(self._packed[first : first + _SCAN_BLOCK] ^ query)
            (hits,) = np.nonzero(distances <= max_distance)
            if hits.size:
                found_rows.append(hits.astype(np.int64) + first)
                found_distances.append(distances[hits])
        if not found_rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.concatenate(found_rows), np.concatenate(found_distances)

    def _multi_index(
        self, query: npt.NDArray[np.uint64], max_distance: int
    ) -> tuple[Rows, Distances]:
        assert self._order is not None and self._starts is not None  # path() checked
        chunks = query.view(np.uint8).view(">u2").astype(np.int64)
        masks = _MASKS[max_distance // CHUNKS]
        # keys[c, j]: the bucket of chunk c for mask j, as an index into the flattened starts.
        keys = (chunks[:, None] ^ masks[None, :]) + np.arange(CHUNKS)[:, None] * (CHUNK_VALUES + 1)
        starts = self._starts.reshape(-1)
        begins = starts[keys].reshape(-1)
        lengths = starts[keys + 1].reshape(-1) - begins
        total = int(lengths.sum())
        if total == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        # The concatenated ranges begins[i] .. begins[i] + lengths[i], without a Python loop.
        shifts = np.repeat(begins - (np.cumsum(lengths) - lengths), lengths)
        candidates = np.take(self._order, shifts + np.arange(total))
        # np.take gathers whole rows several times faster than fancy indexing of a 2-D array.
        distances = _popcount(np.take(self._packed, candidates, axis=0) ^ query)
        close = distances <= max_distance
        # A true match usually sits in several chunks' buckets; random candidates rarely do, so
        # deduplicating after verification sorts a handful of rows instead of thousands.
        rows, first = np.unique(candidates[close], return_index=True)
        return rows.astype(np.int64), distances[close][first]
