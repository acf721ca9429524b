"""CPU metering for the benchmarks: CPU seconds of process trees (from /proc), of the whole
machine, and phases run only when the rest of the machine is quiet."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

CLK_TCK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process tree, from /proc (0 if gone; pid < 0: us and the
    children we have waited for, i.e. a finished wrk run)."""
    if pid < 0:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return own + sum(cpu_seconds(int(child)) for child in children)


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


class CpuMeter:
    """CPU use (% of one core) of named process trees over a window, and of everything else."""

    OTHER = "other work on the machine"

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.percent: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._busy, self._started = machine_busy(), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._started
        self.percent = {
            name: 100 * (cpu_seconds(pid) - self._before[name]) / wall
            for name, pid in self.pids.items()
        }
        total = 100 * (machine_busy() - self._busy) / wall
        self.percent[self.OTHER] = max(0.0, total - sum(self.percent.values()))
        self.percent["machine total (200 = both cores)"] = total

    @property
    def other(self) -> float:
        """CPU % used by processes that are not ours."""
        return self.percent.get(self.OTHER, 0.0)


def wait_quiet(pids: dict[str, int], limit: float, timeout: float) -> float:
    """Wait (bounded) until other work uses at most `limit` % of a core; return the last %."""
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
