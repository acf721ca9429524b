"""Pure bucket arithmetic: the epoch-aligned counter levels and the valid range of seconds.

Levels (docs/design.md): each bucket size is a whole multiple of the one below, aligned
to the epoch. A bucket is `(level, index)` and covers seconds
`[index * LEVEL_SIZES[level], (index + 1) * LEVEL_SIZES[level])`. The Lua scripts do the
per-event and per-range arithmetic with these sizes (injected by projector/scripts.py);
tests/support/oracles.py holds its Python twin, the oracle the tests compare them with.
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
