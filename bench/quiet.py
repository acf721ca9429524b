"""Measured phases on a shared machine: wait until the rest of it is quiet, rerun a phase that
others disturbed, keep the least disturbed run; and the flags that tune it."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from bench.cpu import CpuMeter

T = TypeVar("T")


def wait_quiet(pids: dict[str, int], limit: float, timeout: float) -> float:
    """Wait (bounded) until other work uses at most `limit` % of a core; return the last %
    (with no time to wait, none is spent sampling: 0)."""
    if timeout <= 0:
        return 0.0
    deadline = time.monotonic() + timeout
    while True:
        with CpuMeter(pids) as meter:
            time.sleep(3)
        if meter.other <= limit or time.monotonic() >= deadline:
            return meter.other
        print(f"  other work uses {meter.other:.0f} % of a core; waiting for a quieter machine")


def quietly(
    label: str, run: Callable[[], T], pids: dict[str, int], args: argparse.Namespace
) -> tuple[T, CpuMeter]:
    """Run a phase once the machine is quiet; rerun it if others disturbed it; the least so."""
    # "Disturbed": other work used over twice --quiet during it. At most --attempts runs.
    best: tuple[T, CpuMeter] | None = None
    for _ in range(args.attempts):
        wait_quiet(pids, args.quiet, args.quiet_wait)
        with CpuMeter(pids) as meter:
            out = run()
        if best is None or meter.other < best[1].other:
            best = (out, meter)
        if meter.other <= 2 * args.quiet:
            break
        print(f"  {label}: other work used {meter.other:.0f} % of a core meanwhile; again")
    assert best is not None
    return best


def add_quiet_flags(parser: argparse.ArgumentParser, wait: float = 300, attempts: int = 3) -> None:
    """--quiet, --quiet-wait and --attempts, which `quietly` reads."""
    parser.add_argument(
        "--quiet", type=float, default=25.0, help="most %% of a core other work may use"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=wait,
        help="longest wait for that, per phase (s; 0: no wait, no sample)",
    )
    parser.add_argument(
        "--attempts", type=int, default=attempts, help="most runs of a phase that others disturbed"
    )
