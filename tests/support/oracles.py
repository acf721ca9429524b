"""Python twins of the Lua arithmetic: the oracles the tests hold the scripts to.

`decompose` and `bucket_ids` are the level arithmetic (projector/buckets.py); `CountTree`
is what lua/apply.lua writes to the count tree (projector/keys.py), splits included, and
`CountTree.prefix` what lua/count_lib.lua reads from it; `ExactCounts` is what a range of
published events must count to (the tests' and the benches' one oracle of answers). Production
code never calls these.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from projector import keys
from projector.buckets import LEVEL_SIZES, MAX_SECOND, MIN_SECOND, TOP, check_range

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


class CountTree:
    """The count tree of one org as lua/apply.lua writes it: key -> {field: count}."""

    def __init__(self, base: str, split_at: int = keys.SPLIT_AT) -> None:
        self.base = base
        self.split_at = split_at
        self.hashes: dict[str, dict[int | str, int]] = {}

    def apply(self, events: Iterable[tuple[int, int]]) -> None:
        """One apply.lua call counting (second, weight) pairs: increments, then splits."""
        leaves: dict[str, tuple[int, int]] = {}
        for second, weight in events:
            self._add(keys.upper_key(self.base), second // keys.TREE_SIZES[keys.TREE_TOP], weight)
            for level in range(keys.TREE_TOP, 0, -1):
                size = keys.TREE_SIZES[level]
                index = second // size
                key = keys.node_key(self.base, level, index)
                offset = second - index * size
                if level > 1 and keys.NODE_MARK in self.hashes.get(key, {}):
                    self._add(key, offset // keys.TREE_SIZES[level - 1], weight)
                    continue
                self._add(key, offset, weight)
                leaves[key] = (level, index)
                break
        for key, (level, index) in leaves.items():
            if level > 1 and len(self.hashes[key]) > self.split_at:
                self._split(key, level, index)

    def _add(self, key: str, field: int, weight: int) -> None:
        node = self.hashes.setdefault(key, {})
        node[field] = node.get(field, 0) + weight

    def _split(self, key: str, level: int, index: int) -> None:
        child_size = keys.TREE_SIZES[level - 1]
        ratio = keys.TREE_SIZES[level] // child_size
        seconds = self.hashes.pop(key)
        node: dict[int | str, int] = {keys.NODE_MARK: 1}
        children: dict[int, dict[int | str, int]] = {}
        for offset, value in seconds.items():
            assert isinstance(offset, int)
            j = offset // child_size
            node[j] = node.get(j, 0) + value
            children.setdefault(j, {})[offset - j * child_size] = value
        self.hashes[key] = node
        for j, fields in children.items():
            child = keys.node_key(self.base, level - 1, index * ratio + j)
            self.hashes[child] = fields
            if level - 1 > 1 and len(fields) > self.split_at:
                self._split(child, level - 1, index * ratio + j)

    def prefix(self, second: int, read: list[str] | None = None) -> int:
        """Events before `second`, read as lua/count_lib.lua reads them (the keys it reads
        are appended to `read`)."""
        read = [] if read is None else read
        read.append(keys.upper_key(self.base))
        upper = self.hashes.get(keys.upper_key(self.base), {})
        total = sum(v for f, v in upper.items() if f < second // keys.TREE_SIZES[keys.TREE_TOP])  # type: ignore[operator]
        for level in range(keys.TREE_TOP, 0, -1):
            size = keys.TREE_SIZES[level]
            index, offset = divmod(second, size)
            if offset == 0:
                return total
            read.append(keys.node_key(self.base, level, index))
            node = self.hashes.get(read[-1], {})
            numbers = {f: v for f, v in node.items() if isinstance(f, int)}
            if keys.NODE_MARK not in node:
                return total + sum(v for f, v in numbers.items() if f < offset)
            total += sum(v for f, v in numbers.items() if f < offset // keys.TREE_SIZES[level - 1])
        return total


class ExactCounts:
    """Exact counts by bisection over each org's sorted event seconds."""

    def __init__(self, events: Iterable[tuple[str, int]]) -> None:
        self.seconds: dict[str, list[int]] = {}
        for org, second in events:
            self.seconds.setdefault(org, []).append(second)
        for values in self.seconds.values():
            values.sort()

    def count(self, org: str, start: int, end: int) -> int:
        """Events of org with start <= second <= end."""
        values = self.seconds.get(org, [])
        return bisect_right(values, end) - bisect_left(values, start)
