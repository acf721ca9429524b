"""Bucket arithmetic: exact, disjoint, bounded decompositions of any valid range."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from projector.buckets import LEVEL_SIZES, MAX_SECOND, TOP
from tests.support.oracles import MAX_BUCKETS, bucket_ids, decompose

RATIOS = [LEVEL_SIZES[i + 1] // LEVEL_SIZES[i] for i in range(TOP)]
T = LEVEL_SIZES[TOP]
seconds = st.integers(0, MAX_SECOND)


def covered(buckets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The [first, last] second spans of `buckets`, sorted."""
    return sorted((i * LEVEL_SIZES[lv], (i + 1) * LEVEL_SIZES[lv] - 1) for lv, i in buckets)


def check(start: int, end: int) -> list[tuple[int, int]]:
    """Assert every property of decompose(start, end); return it."""
    parts = decompose(start, end)
    assert len(parts) <= MAX_BUCKETS
    assert len(set(parts)) == len(parts)
    spans = covered(parts)
    # Sorted spans that chain end-to-start are disjoint and cover [start, end] exactly.
    assert spans[0][0] == start and spans[-1][1] == end
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(spans))
    assert sum(LEVEL_SIZES[lv] for lv, _ in parts) == end - start + 1
    return parts


def hits(parts: list[tuple[int, int]], second: int) -> int:
    """How many buckets of `parts` hold `second`."""
    chosen = set(parts)
    return sum(1 for b in bucket_ids(second) if b in chosen)


def digits_max(limit: int) -> int:
    """Max over 0 <= x <= limit of the mixed-radix digit sum of x below the top level."""

    def digits(x: int) -> list[int]:
        return [(x // LEVEL_SIZES[i]) % RATIOS[i] for i in range(TOP)]

    best = sum(digits(limit))
    top_down = list(range(TOP - 1, -1, -1))
    for pos in top_down:  # the classic candidates: keep higher digits, lower one, max the rest
        d = digits(limit)
        if d[pos] == 0:
            continue
        x = sum(d[i] * LEVEL_SIZES[i] for i in range(pos + 1, TOP))
        x += (d[pos] - 1) * LEVEL_SIZES[pos]
        x += sum((RATIOS[i] - 1) * LEVEL_SIZES[i] for i in range(pos))
        best = max(best, sum(digits(x)))
    return best


ALIGNED = [60, 3600, 86400, 32 * 86400, 512 * 86400, T]
EDGE_CASES = [
    (0, 0),
    (MAX_SECOND, MAX_SECOND),
    (0, MAX_SECOND),
    (1, MAX_SECOND - 1),
    (1, 22 * T - 2),  # the witness of MAX_BUCKETS
    (59, 60),
    (1_774_521_852, 1_774_521_852),
    (1_774_483_200, 1_774_569_599),  # one whole UTC day
    *[(a + 1, 3 * a - 2) for a in ALIGNED],  # 1 s after a boundary to 1 s before another
    *[(a - 1, a) for a in ALIGNED],
    *[(a, 2 * a - 1) for a in ALIGNED],  # exactly one bucket
]


@pytest.mark.parametrize(("start", "end"), EDGE_CASES)
def test_edge_ranges_decompose_exactly(start: int, end: int) -> None:
    check(start, end)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, [(0, 0)]),
        (0, 59, [(1, 0)]),
        (0, MAX_SECOND, None),
        (86_400, 2 * 86_400 - 1, [(3, 1)]),
        (59, 60, [(0, 59), (0, 60)]),
    ],
)
def test_aligned_ranges_use_the_coarsest_buckets(
    start: int, end: int, expected: list | None
) -> None:
    parts = decompose(start, end)
    if expected is not None:
        assert sorted(parts) == expected
    else:
        assert all(level >= 3 for level, _ in parts)


def test_the_bound_is_reached_and_tight() -> None:
    assert len(check(1, 22 * T - 2)) == MAX_BUCKETS == 454
    per_side = sum(r - 1 for r in RATIOS)
    # The design's generic bound, of which MAX_BUCKETS is the valid-range refinement.
    assert 2 * per_side + -(-(MAX_SECOND + 1) // T) == 457
    # Ranges in one top bucket: <= 2 * per_side. Otherwise left(<= per_side) + right + tops:
    # 22 tops need start 0 (no left edge); 21 need an end in the last, partial top bucket,
    # whose ragged edge is at most digits_max(...) buckets; 20 or fewer tops: 2 * per_side + 20.
    last = digits_max(MAX_SECOND + 1 - 22 * T)
    assert max(2 * per_side + 20, per_side + last + 21, per_side + 21, last + 22) == MAX_BUCKETS


@given(seconds, seconds)
@example(0, MAX_SECOND)
@example(1, 22 * T - 2)
def test_random_ranges_are_exact_and_bounded(a: int, b: int) -> None:
    check(min(a, b), max(a, b))


@given(st.integers(0, 22), st.integers(0, 22), st.data())
def test_adversarial_digit_ranges_are_bounded(top_a: int, top_b: int, data: st.DataObject) -> None:
    """Bounds whose lower digits are extreme (0, 1, max-1, max) at every level."""

    def bound(top: int) -> int:
        x = top * T
        for level in range(TOP):
            r = RATIOS[level]
            x += data.draw(st.sampled_from([0, 1, r - 2, r - 1])) * LEVEL_SIZES[level]
        return min(x, MAX_SECOND)

    a, b = sorted((bound(top_a), bound(top_b)))
    check(a, b)


@given(seconds, seconds, st.lists(seconds, max_size=20), st.lists(st.integers(-3, 3), max_size=6))
def test_each_second_hits_one_bucket_inside_none_outside(
    a: int, b: int, probes: list[int], nudges: list[int]
) -> None:
    start, end = min(a, b), max(a, b)
    parts = decompose(start, end)
    edges = [start + n for n in nudges] + [end + n for n in nudges]
    for s in [*probes, *edges, start, end]:
        if 0 <= s <= MAX_SECOND:
            assert hits(parts, s) == (1 if start <= s <= end else 0)


@given(seconds)
def test_bucket_ids_nest(second: int) -> None:
    ids = bucket_ids(second)
    assert [lv for lv, _ in ids] == list(range(TOP + 1))
    for level, index in ids:
        assert index * LEVEL_SIZES[level] <= second < (index + 1) * LEVEL_SIZES[level]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (-1, 0),
        (0, MAX_SECOND + 1),
        (5, 4),
        (1.0, 2),
        (0, 2.5),
        (True, 2),
    ],
)
def test_invalid_ranges_are_rejected(start: float, end: float) -> None:
    with pytest.raises(ValueError):
        decompose(start, end)  # type: ignore[arg-type]


@pytest.mark.parametrize("second", [-1, MAX_SECOND + 1])
def test_bucket_ids_rejects_out_of_range(second: int) -> None:
    with pytest.raises(ValueError):
        bucket_ids(second)
