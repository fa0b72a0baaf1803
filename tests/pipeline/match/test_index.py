"""HashIndex: exact Hamming search, checked against a brute force over Python integers."""

from __future__ import annotations

import numpy as np
import pytest

from modstream.pipeline.match.index import (
    MULTI_INDEX_MIN_ROWS,
    HashIndex,
    LookupPath,
    lookup_path,
)

DISTANCES = (0, 1, 15, 16, 17, 31, 32, 47, 48, 64)
# multi_index_min_rows for each path: 0 builds the chunk tables for any bank, a huge value never.
PATHS = {"multi_index": 0, "linear": 1 << 40}


def flipped(row: np.ndarray, positions: list[int]) -> np.ndarray:
    """``row`` with the given bit positions (0 = most significant bit of byte 0) inverted."""
    bits = np.unpackbits(row)
    bits[positions] ^= 1
    return np.packbits(bits)


def spread_positions(rng: np.random.Generator, distance: int) -> list[int]:
    """``distance`` bit positions spread as evenly as possible over the 16 chunks of 16 bits: the
    pigeonhole's worst case, where the fewest chunks lie within ``distance // 16``."""
    chunks = rng.permutation(16)
    positions: list[int] = []
    for rank, chunk in enumerate(chunks):
        count = distance // 16 + (1 if rank < distance % 16 else 0)
        positions += [int(chunk) * 16 + int(bit) for bit in rng.choice(16, count, replace=False)]
    return positions


def brute_distances(bank: np.ndarray, query: np.ndarray) -> list[int]:
    """The Hamming distance from ``query`` to each row, by Python integer arithmetic."""
    target = int.from_bytes(query.tobytes(), "big")
    return [bin(int.from_bytes(row.tobytes(), "big") ^ target).count("1") for row in bank]


def reference(distances: list[int], max_distance: int) -> list[tuple[int, int]]:
    """(distance, row) of every row within ``max_distance``, in that order."""
    return sorted((d, row) for row, d in enumerate(distances) if d <= max_distance)


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    """A random bank of 20,000 rows with, for each of four queries, rows planted at distances
    0..70: half with random flips, half spread over the chunks (the pigeonhole's edge)."""
    rng = np.random.default_rng(7)
    bank = rng.integers(0, 256, size=(20_000, 32), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(4, 32), dtype=np.uint8)
    slots = iter(rng.permutation(len(bank)))
    for query in queries:
        for distance in range(71):
            random_positions = [int(bit) for bit in rng.choice(256, distance, replace=False)]
            bank[next(slots)] = flipped(query, random_positions)
            bank[next(slots)] = flipped(query, spread_positions(rng, distance))
    return bank, queries


@pytest.fixture(scope="module")
def truth(planted: tuple[np.ndarray, np.ndarray]) -> list[list[int]]:
    """The brute force's distances from each planted query to every row."""
    bank, queries = planted
    return [brute_distances(bank, query) for query in queries]


@pytest.fixture(scope="module")
def indexes(planted: tuple[np.ndarray, np.ndarray]) -> dict[str, HashIndex]:
    bank, _ = planted
    return {name: HashIndex.build(bank, multi_index_min_rows=rows) for name, rows in PATHS.items()}


@pytest.mark.parametrize("path", PATHS)
def test_search_equals_brute_force(
    planted: tuple[np.ndarray, np.ndarray],
    truth: list[list[int]],
    indexes: dict[str, HashIndex],
    path: str,
) -> None:
    """Every row within d and no other, sorted by distance then row, on either path."""
    _, queries = planted
    index = indexes[path]
    for distance in DISTANCES:
        expected_path = LookupPath.LINEAR if path == "linear" or distance >= 48 else path
        assert index.path(distance) == expected_path
        for query, all_distances in zip(queries, truth, strict=True):
            rows, distances = index.search(query, distance)
            assert rows.dtype == np.int64
            expected = reference(all_distances, distance)
            assert list(zip(distances.tolist(), rows.tolist(), strict=True)) == expected
            # Two planted rows per distance up to 70, so every distance has something to find.
            assert len(expected) >= 2 * (distance + 1)


@pytest.mark.parametrize("path", PATHS)
def test_nearest_equals_brute_force(
    planted: tuple[np.ndarray, np.ndarray],
    truth: list[list[int]],
    indexes: dict[str, HashIndex],
    path: str,
) -> None:
    """nearest is the first of the brute force's (distance, row) order, or None."""
    bank, queries = planted
    index = indexes[path]
    rng = np.random.default_rng(11)
    # A near-duplicate of a random banked row (20 bits flipped), as a re-upload would be.
    near = flipped(bank[1234], [int(bit) for bit in rng.choice(256, 20, replace=False)])
    cases = [*zip(queries, truth, strict=True), (near, brute_distances(bank, near))]
    for query, all_distances in cases:
        for distance in (0, 5, 19, 20, 31, 40):
            expected = reference(all_distances, distance)
            found = index.nearest(query, distance)
            assert found == (None if not expected else (expected[0][1], expected[0][0]))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("distance", [1, 15, 16, 17, 31, 32, 47, 48, 63, 64, 128, 255])
def test_a_hash_at_exactly_d_matches_at_d_not_below(path: str, distance: int) -> None:
    """The bound is inclusive: a row d bits away is found at d and not at d - 1."""
    rng = np.random.default_rng(distance)
    query = rng.integers(0, 256, size=32, dtype=np.uint8)
    bank = np.stack([flipped(query, spread_positions(rng, distance))] * 2 + [~query])
    index = HashIndex.build(bank, multi_index_min_rows=PATHS[path])
    rows, distances = index.search(query, distance)
    assert (rows.tolist(), distances.tolist()) == ([0, 1], [distance, distance])
    assert index.search(query, distance - 1)[0].size == 0
    assert index.nearest(query, distance - 1) is None


@pytest.mark.parametrize("path", PATHS)
def test_an_empty_index_finds_nothing(path: str) -> None:
    """A bank of no rows is valid: every lookup is empty, at every distance."""
    index = HashIndex.build(np.empty((0, 32), dtype=np.uint8), multi_index_min_rows=PATHS[path])
    query = np.zeros(32, dtype=np.uint8)
    assert len(index) == 0
    for distance in (0, 31, 47, 255):
        rows, distances = index.search(query, distance)
        assert rows.shape == distances.shape == (0,)
        assert rows.dtype == np.int64
        assert index.nearest(query, distance) is None


@pytest.mark.parametrize("path", PATHS)
def test_duplicate_rows_are_all_returned(path: str) -> None:
    """Identical banked hashes are distinct rows: each is returned, in row order."""
    rng = np.random.default_rng(3)
    bank = rng.integers(0, 256, size=(500, 32), dtype=np.uint8)
    twin = flipped(bank[0], [3, 100, 200])
    for row in (17, 42, 43, 499):
        bank[row] = twin
    index = HashIndex.build(bank, multi_index_min_rows=PATHS[path])
    for distance in (3, 31, 64):
        rows, distances = index.search(bank[0], distance)
        assert rows.tolist()[:5] == [0, 17, 42, 43, 499]
        assert distances.tolist()[:5] == [0, 3, 3, 3, 3]


@pytest.mark.parametrize("path", PATHS)
def test_nearest_prefers_the_closest_then_the_lowest_row(path: str) -> None:
    """The closest row wins whatever its position; among equally close rows, the lowest."""
    rng = np.random.default_rng(5)
    query = rng.integers(0, 256, size=32, dtype=np.uint8)
    bank = rng.integers(0, 256, size=(300, 32), dtype=np.uint8)
    bank[10] = flipped(query, list(range(9)))  # 9 bits away
    bank[200] = flipped(query, [0, 50, 100, 150, 250])  # 5 bits away
    bank[250] = flipped(query, [1, 2, 3, 4, 5])  # 5 bits away, a later row
    index = HashIndex.build(bank, multi_index_min_rows=PATHS[path])
    assert index.nearest(query, 31) == (200, 5)
    assert index.nearest(query, 8) == (200, 5)
    assert index.nearest(query, 4) is None
    bank[7] = bank[250]
    assert HashIndex.build(bank, multi_index_min_rows=PATHS[path]).nearest(query, 31) == (7, 5)


def test_build_copies_the_bank() -> None:
    """Changing the caller's array after build does not change the index."""
    bank = np.zeros((10, 32), dtype=np.uint8)
    index = HashIndex.build(bank, multi_index_min_rows=0)
    bank[:] = 255
    assert index.nearest(np.zeros(32, dtype=np.uint8), 0) == (0, 0)
    assert len(index.search(np.zeros(32, dtype=np.uint8), 0)[0]) == 10


def test_search_many_is_search_per_query(planted: tuple[np.ndarray, np.ndarray]) -> None:
    """search_many gives, query by query, what search gives."""
    bank, queries = planted
    index = HashIndex.build(bank)
    for (rows, distances), query in zip(index.search_many(queries, 31), queries, strict=True):
        expected_rows, expected_distances = index.search(query, 31)
        assert rows.tolist() == expected_rows.tolist()
        assert distances.tolist() == expected_distances.tolist()


def test_nbytes_counts_the_tables_only_when_built() -> None:
    """A small bank keeps only its packed rows; a large one adds 16 orders and 16 offset tables."""
    bank = np.zeros((100, 32), dtype=np.uint8)
    assert HashIndex.build(bank).nbytes == 100 * 32
    assert HashIndex.build(bank, multi_index_min_rows=0).nbytes == (
        100 * 32 + 16 * 100 * 4 + 16 * 65537 * 8
    )


@pytest.mark.parametrize(
    "hashes",
    [
        np.zeros((4, 31), dtype=np.uint8),
        np.zeros((4, 33), dtype=np.uint8),
        np.zeros(32, dtype=np.uint8),
        np.zeros((4, 32, 1), dtype=np.uint8),
        np.zeros((4, 32), dtype=np.int64),
        np.zeros((4, 4), dtype=np.uint64),
        [[0] * 32],
    ],
)
def test_build_refuses_anything_but_rows_of_32_bytes(hashes: object) -> None:
    """Only an (n, 32) uint8 array is a bank of packed 256-bit hashes."""
    with pytest.raises(ValueError):
        HashIndex.build(hashes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query",
    [
        np.zeros(31, dtype=np.uint8),
        np.zeros((1, 32), dtype=np.uint8),
        np.zeros(32, dtype=np.int16),
        np.zeros(4, dtype=np.uint64),
        bytes(32),
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_lookups_refuse_anything_but_32_bytes(query: object, path: str) -> None:
    """A query is one (32,) uint8 hash, for search and nearest alike."""
    index = HashIndex.build(np.zeros((3, 32), dtype=np.uint8), multi_index_min_rows=PATHS[path])
    with pytest.raises(ValueError):
        index.search(query, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        index.nearest(query, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize("distance", [-1, 256, 1000, 1.5, True, "31", None])
def test_lookups_refuse_distances_outside_0_to_255(distance: object) -> None:
    """max_distance is an integer from 0 to 255; anything else is an error, not an empty result."""
    index = HashIndex.build(np.zeros((3, 32), dtype=np.uint8))
    query = np.zeros(32, dtype=np.uint8)
    with pytest.raises(ValueError):
        index.search(query, distance)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        index.nearest(query, distance)  # type: ignore[arg-type]


def test_numpy_integer_distances_are_accepted() -> None:
    """A distance read from a numpy array works like the Python integer it holds."""
    index = HashIndex.build(np.zeros((3, 32), dtype=np.uint8))
    assert index.nearest(np.zeros(32, dtype=np.uint8), np.int64(0)) == (0, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rows", "distance", "expected"),
    [
        (MULTI_INDEX_MIN_ROWS - 1, 31, LookupPath.LINEAR),
        (MULTI_INDEX_MIN_ROWS, 0, LookupPath.MULTI_INDEX),
        (MULTI_INDEX_MIN_ROWS, 31, LookupPath.MULTI_INDEX),
        (MULTI_INDEX_MIN_ROWS, 32, LookupPath.LINEAR),
        (2 * MULTI_INDEX_MIN_ROWS, 47, LookupPath.MULTI_INDEX),
        (10_000_000, 47, LookupPath.MULTI_INDEX),
        (10_000_000, 48, LookupPath.LINEAR),
        (10_000_000, 255, LookupPath.LINEAR),
    ],
)
def test_lookup_path(rows: int, distance: int, expected: LookupPath) -> None:
    """Chunk tables for large banks at radius 0..2 (radius 2 from twice the rows); else a scan."""
    assert lookup_path(rows, distance) == expected
