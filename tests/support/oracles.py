"""Python twins of the Lua arithmetic: the oracles the tests hold the scripts to.

`decompose` is what lua/count_lib.lua does to a range, `bucket_ids` and `locate` what
lua/apply.lua does to one event; production code never calls these.
"""

from __future__ import annotations

from projector import keys
from projector.buckets import DAY, LEVEL_SIZES, MAX_SECOND, MIN_SECOND, TOP, check_range

# The design's generic bound is 2 * (59 + 59 + 23 + 31 + 15 + 15 + 15) + 23 = 457. It is
# not reached inside 0..MAX_SECOND: both ragged edges can take their maximum (217 each)
# only when the range runs from just after one top bucket's start to just before a later
# top bucket's end, and the valid range holds 22.38 top buckets, which leaves at most 20
# whole ones in between (21 or 22 whole ones force an edge to be short: see
# tests/unit/test_buckets.py, which checks both the witness and the cases).
MAX_BUCKETS = 454

Bucket = tuple[int, int]


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


def locate(base: str, level: int, index: int) -> tuple[str, int]:
    """(key, field) holding the counter of bucket (level, index) of the org at `base`."""
    if level == 0:
        day = index // DAY
        return keys.day_key(base, day), index - day * DAY
    if level == 1:
        day = index // keys.MINUTES_PER_DAY
        return keys.day_key(base, day), -1 - (index - day * keys.MINUTES_PER_DAY)
    if level == 2:
        day = index // keys.HOURS_PER_DAY
        field = -1 - keys.MINUTES_PER_DAY - (index - day * keys.HOURS_PER_DAY)
        return keys.day_key(base, day), field
    if level == 3:
        block = index // keys.DAYS_PER_BLOCK
        return keys.block_key(base, block), index - block * keys.DAYS_PER_BLOCK
    if 4 <= level <= TOP:
        return keys.upper_key(base), 4 * index + (level - 4)
    raise ValueError(f"no level {level}")
