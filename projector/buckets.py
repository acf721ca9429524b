"""Pure bucket arithmetic: epoch-aligned counter levels and exact range decomposition.

Levels (docs/design.md): each bucket size is a whole multiple of the one below, aligned
to the epoch. A bucket is `(level, index)` and covers seconds
`[index * LEVEL_SIZES[level], (index + 1) * LEVEL_SIZES[level])`.
"""

from __future__ import annotations

MIN_SECOND = 0
MAX_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z
DAY = 86_400
LEVEL_SIZES: tuple[int, ...] = (
    1,
    60,
    3_600,
    DAY,
    32 * DAY,
    512 * DAY,
    8_192 * DAY,
    131_072 * DAY,
)
TOP = len(LEVEL_SIZES) - 1

# The design's generic bound is 2 * (59 + 59 + 23 + 31 + 15 + 15 + 15) + 23 = 457. It is
# not reached inside 0..MAX_SECOND: both ragged edges can take their maximum (217 each)
# only when the range runs from just after one top bucket's start to just before a later
# top bucket's end, and the valid range holds 22.38 top buckets, which leaves at most 20
# whole ones in between (21 or 22 whole ones force an edge to be short: see
# tests/unit/test_buckets.py, which checks both the witness and the cases).
MAX_BUCKETS = 454

Bucket = tuple[int, int]


def check_range(start: int, end: int) -> None:
    """Raise ValueError unless 0 <= start <= end <= MAX_SECOND (integers)."""
    if type(start) is not int or type(end) is not int:
        raise ValueError("range bounds must be integer epoch seconds")
    if not MIN_SECOND <= start <= MAX_SECOND:
        raise ValueError(f"start {start} is outside {MIN_SECOND}..{MAX_SECOND}")
    if not MIN_SECOND <= end <= MAX_SECOND:
        raise ValueError(f"end {end} is outside {MIN_SECOND}..{MAX_SECOND}")
    if start > end:
        raise ValueError(f"start {start} is after end {end}")


def bucket_ids(second: int) -> tuple[Bucket, ...]:
    """The bucket holding `second` at every level, finest first."""
    if not MIN_SECOND <= second <= MAX_SECOND:
        raise ValueError(f"second {second} is outside {MIN_SECOND}..{MAX_SECOND}")
    return tuple((level, second // size) for level, size in enumerate(LEVEL_SIZES))


def decompose(start: int, end: int) -> list[Bucket]:
    """Disjoint aligned buckets whose union is exactly [start, end] (inclusive seconds)."""
    check_range(start, end)
    out: list[Bucket] = []
    lo, hi = start, end + 1  # half-open; both stay aligned to the current level's size
    for level in range(TOP):
        size, up = LEVEL_SIZES[level], LEVEL_SIZES[level + 1]
        lo_up = -(-lo // up) * up
        hi_up = hi // up * up
        if lo_up >= hi_up:
            # No whole bucket of the next level fits: the rest is all at this level.
            out.extend((level, i) for i in range(lo // size, hi // size))
            return out
        out.extend((level, i) for i in range(lo // size, lo_up // size))
        out.extend((level, i) for i in range(hi_up // size, hi // size))
        lo, hi = lo_up, hi_up
    size = LEVEL_SIZES[TOP]
    out.extend((TOP, i) for i in range(lo // size, hi // size))
    return out
