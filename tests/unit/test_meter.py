"""The rebuild's progress arithmetic: rates over a window, an ETA that nets out the topic's
growth, none while not gaining."""

from __future__ import annotations

import pytest

from projector.meter import ProgressMeter, Reading


def test_first_reading_has_no_rate_yet() -> None:
    estimate = ProgressMeter().add(Reading(10.0, 0, 1_000))
    assert (estimate.lag, estimate.events_per_second, estimate.eta_seconds) == (1_000, None, None)


def test_rate_and_eta_net_of_the_topic_growing() -> None:
    meter = ProgressMeter(window=10)
    meter.add(Reading(0.0, 0, 100_000))
    estimate = meter.add(Reading(2.0, 20_000, 102_000))  # 10,000/s read, 1,000/s published
    assert estimate.events_per_second == pytest.approx(10_000)
    assert estimate.lag == 82_000
    assert estimate.eta_seconds == pytest.approx(82_000 / 9_000)


def test_old_readings_leave_the_window() -> None:
    meter = ProgressMeter(window=10)
    meter.add(Reading(0.0, 0, 1_000_000))
    for t in range(1, 31):
        estimate = meter.add(Reading(float(t), 1_000 * t if t <= 10 else 10_000 + 100 * t, 10**6))
    # Only the last ~10 s count: 100 records/s, not the early 1,000/s.
    assert estimate.events_per_second == pytest.approx(100)


def test_no_eta_while_not_gaining_and_zero_once_caught_up() -> None:
    meter = ProgressMeter()
    meter.add(Reading(0.0, 0, 1_000))
    assert meter.add(Reading(1.0, 500, 2_000)).eta_seconds is None  # topic grows faster
    assert meter.add(Reading(2.0, 5_000, 5_000)).eta_seconds == 0.0


def test_a_repeated_instant_keeps_the_newest_reading() -> None:
    meter = ProgressMeter()
    meter.add(Reading(0.0, 0, 100))
    meter.add(Reading(1.0, 10, 100))
    estimate = meter.add(Reading(1.0, 20, 100))
    assert estimate.events_per_second == pytest.approx(20)


def test_the_progress_line() -> None:
    meter = ProgressMeter()
    meter.add(Reading(0.0, 0, 400_000))
    line = meter.add(Reading(4.0, 160_000, 400_000)).line(2, "building")
    assert line == (
        "rebuild g2 building: 160,000/400,000 records (40.0%), 40,000 events/s, "
        "lag 240,000, ETA 6 s"
    )
