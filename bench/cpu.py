"""CPU metering for the benchmarks: CPU seconds of process trees and of the whole machine
(through psutil), and the share of a window each of them used."""

from __future__ import annotations

import os
import time

import psutil


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process tree (0 if gone; pid < 0: us and the children
    we have waited for, i.e. a finished wrk run)."""
    if pid < 0:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system
    try:
        top = psutil.Process(pid)
        tree = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in tree:
        try:
            own = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue  # a child that ended meanwhile
        total += own.user + own.system
    return total


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (all cores)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


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
