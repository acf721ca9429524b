"""How fast a rebuild goes and when it will have caught up: pure arithmetic over readings."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

WINDOW_SECONDS = 10.0  # rates are measured over this much recent time


@dataclass(frozen=True)
class Reading:
    """At `at` (seconds), the rebuild had passed `applied` records of the `end` in the topic."""

    at: float
    applied: int
    end: int


@dataclass(frozen=True)
class Estimate:
    """Progress: records passed, in the topic, still to go; rate (records/s) and ETA (s)."""

    applied: int
    end: int
    lag: int
    events_per_second: float | None
    eta_seconds: float | None

    def line(self, generation: int, phase: str) -> str:
        """One human line, as `python -m projector rebuild` prints every few seconds."""
        share = 100.0 * self.applied / self.end if self.end else 100.0
        rate = "-" if self.events_per_second is None else f"{self.events_per_second:,.0f}"
        eta = "-" if self.eta_seconds is None else f"{self.eta_seconds:,.0f} s"
        return (
            f"rebuild g{generation} {phase}: {self.applied:,}/{self.end:,} records "
            f"({share:.1f}%), {rate} events/s, lag {self.lag:,}, ETA {eta}"
        )


class ProgressMeter:
    """Rates over the last WINDOW_SECONDS of readings; the ETA nets out the topic's growth."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self._window = window
        self._readings: deque[Reading] = deque()

    def add(self, reading: Reading) -> Estimate:
        """Record a reading; the estimate as of it."""
        readings = self._readings
        if readings and reading.at <= readings[-1].at:
            readings.pop()  # the same instant twice (or a clock step back): keep the newest
        readings.append(reading)
        while len(readings) > 2 and reading.at - readings[1].at >= self._window:
            readings.popleft()
        lag = max(0, reading.end - reading.applied)
        first = readings[0]
        span = reading.at - first.at
        if span <= 0:
            return Estimate(reading.applied, reading.end, lag, None, None)
        rate = max(0.0, (reading.applied - first.applied) / span)
        growth = max(0.0, (reading.end - first.end) / span)
        gaining = rate - growth
        if lag == 0:
            eta: float | None = 0.0
        elif gaining > 0:
            eta = lag / gaining
        else:
            eta = None  # not gaining on the topic (yet): no honest ETA
        return Estimate(reading.applied, reading.end, lag, rate, eta)
