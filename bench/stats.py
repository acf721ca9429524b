"""The figures the benches print: percentiles, milliseconds, and timing one call per item."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def pct(values: Sequence[float], q: int) -> float:
    """The q-th percentile (inclusive method)."""
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def ms(values: Sequence[float], q: int) -> float:
    """The q-th percentile in milliseconds."""
    return 1000 * pct(values, q)


def timed(items: Sequence[T], call: Callable[[T], R]) -> list[tuple[float, R]]:
    """(seconds, result) of `call` per item, one after the other."""
    out = []
    clock = time.perf_counter
    for item in items:
        started = clock()
        result = call(item)
        out.append((clock() - started, result))
    return out
