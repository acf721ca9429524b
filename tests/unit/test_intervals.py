"""Calendar buckets of a series: DST days, odd offsets, ISO weeks, quarters, clipping, limits.

The oracle below draws edges another way than api/intervals.py: it finds each zone's offset
changes by probing every half hour and bisecting, splits time into pieces of one offset, and
reads the edges off those pieces (the first instant a piece's clock reaches a period's start;
for hours, every whole hour of a piece's clock and every piece's start).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.intervals import (
    MAX_BUCKETS,
    Bucket,
    Interval,
    TooManyBuckets,
    format_local,
    series,
    zone,
    zone_names,
)
from events.schema import MAX_EPOCH, parse_instant

HOUR, DAY = 3600, 86400
PROBE = 1800


def at(text: str) -> int:
    return parse_instant(text)[1]


def offset(tz: object, second: int) -> int:
    """The oracle's offset: the standard library's own conversion (two days earlier where the
    local time is past year 9999 and cannot be a datetime)."""
    if second > MAX_EPOCH - 2 * DAY:
        second = min(second, MAX_EPOCH - 2 * DAY)
    moment = datetime.fromtimestamp(second, UTC).astimezone(tz)  # type: ignore[arg-type]
    return int(moment.utcoffset().total_seconds())  # type: ignore[union-attr]


def pieces(tz: object, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """(first, last, offset): maximal runs of one offset covering [lo, hi]."""
    out, first, current = [], lo, offset(tz, lo)
    probe = lo
    while probe < hi:
        step = min(probe + PROBE, hi)
        if offset(tz, step) != current:
            a, b = probe, step  # offset(a) == current != offset(b)
            while b - a > 1:
                mid = (a + b) // 2
                a, b = (mid, b) if offset(tz, mid) == current else (a, mid)
            out.append((first, b - 1, current))
            first, current = b, offset(tz, b)
        probe = step
    out.append((first, hi, current))
    return out


def period_starts(interval: Interval, first: date, last: date) -> list[date]:
    """Local first days of the periods from the one holding `first` to the one after `last`."""
    if interval is Interval.DAY:
        day, step = first, timedelta(days=1)
    elif interval is Interval.WEEK:
        day, step = first - timedelta(days=first.isocalendar()[2] - 1), timedelta(days=7)
    else:
        months = {Interval.MONTH: 1, Interval.QUARTER: 3, Interval.YEAR: 12}[interval]
        day, step = date(first.year, (first.month - 1) // months * months + 1, 1), None
        if interval is Interval.YEAR:
            day = date(first.year, 1, 1)
    out = [day]
    while out[-1] <= last:
        if step is not None:
            out.append(out[-1] + step)
        else:
            n = out[-1].year * 12 + out[-1].month - 1 + months
            if n // 12 > 9999:
                break
            out.append(date(n // 12, n % 12 + 1, 1))
    return out


def oracle_edges(tz: object, interval: Interval, start: int, end: int) -> list[int]:
    """The first second of every bucket of [start, end], drawn from the offset pieces."""
    if interval is Interval.HOUR:
        edges = [start]
        for first, last, off in pieces(tz, start, end):
            if first > start:
                edges.append(first)
            wall = first + off
            t = wall - wall % HOUR + HOUR - off
            while t <= last:
                edges.append(t)
                t += HOUR
        return edges
    epoch = date(1970, 1, 1)
    first_wall = date.fromordinal(epoch.toordinal() + (start + offset(tz, start)) // DAY)
    last_wall = date.fromordinal(epoch.toordinal() + min(MAX_EPOCH, end + DAY) // DAY)
    edges = [start]
    for day in period_starts(interval, first_wall, last_wall)[1:]:
        wall = (day.toordinal() - epoch.toordinal()) * DAY
        around = pieces(tz, max(0, wall - 2 * DAY), min(MAX_EPOCH + 1, wall + 2 * DAY))
        reach = next((max(a, wall - off) for a, b, off in around if b + off >= wall), None)
        if reach is not None and edges[-1] < reach <= end:
            edges.append(reach)
    return edges


def check_buckets(tz: object, interval: Interval, start: int, end: int) -> list[Bucket]:
    got = series(tz, interval, start, end)  # type: ignore[arg-type]
    assert [b.start for b in got] == oracle_edges(tz, interval, start, end)
    assert got[0].start == start and got[-1].end == end
    for before, after in itertools.pairwise(got):
        assert before.end + 1 == after.start
    for b in got:
        assert b.start <= b.end
        assert (b.start_offset, b.end_offset) == (offset(tz, b.start), offset(tz, b.end))
        if interval is Interval.HOUR:
            assert b.end - b.start < HOUR and b.start_offset == b.end_offset
    return got


def texts(buckets: list[Bucket]) -> list[tuple[str, str]]:
    return [
        (format_local(b.start, b.start_offset), format_local(b.end, b.end_offset)) for b in buckets
    ]


def hours_long(buckets: list[Bucket]) -> list[float]:
    return [(b.end - b.start + 1) / HOUR for b in buckets]


def test_a_spring_day_in_oslo_is_23_hours_and_an_autumn_day_25() -> None:
    oslo = zone("Europe/Oslo")
    days = check_buckets(oslo, Interval.DAY, at("2026-03-28T23:00:00Z"), at("2026-03-30T21:59:59Z"))
    assert texts(days) == [
        ("2026-03-29T00:00:00+01:00", "2026-03-29T23:59:59+02:00"),
        ("2026-03-30T00:00:00+02:00", "2026-03-30T23:59:59+02:00"),
    ]
    assert hours_long(days) == [23, 24]
    autumn = check_buckets(
        oslo, Interval.DAY, at("2026-10-24T22:00:00Z"), at("2026-10-25T22:59:59Z")
    )
    assert texts(autumn) == [("2026-10-25T00:00:00+02:00", "2026-10-25T23:59:59+01:00")]
    assert hours_long(autumn) == [25]


def test_hours_of_a_dst_night_in_oslo_and_new_york() -> None:
    oslo = zone("Europe/Oslo")
    spring = check_buckets(
        oslo, Interval.HOUR, at("2026-03-28T23:00:00Z"), at("2026-03-29T21:59:59Z")
    )
    assert len(spring) == 23
    assert [s for s, _ in texts(spring)[1:3]] == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
    ]
    autumn = check_buckets(
        oslo, Interval.HOUR, at("2026-10-24T22:00:00Z"), at("2026-10-25T22:59:59Z")
    )
    assert len(autumn) == 25 and set(hours_long(autumn)) == {1}
    assert [s for s, _ in texts(autumn)[2:4]] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
    ]
    new_york = zone("America/New_York")
    day = at("2026-11-01T04:00:00Z")
    nov = check_buckets(new_york, Interval.HOUR, day, day + 25 * HOUR - 1)
    assert [s for s, _ in texts(nov)[1:3]] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
    ]
    days = check_buckets(new_york, Interval.DAY, at("2026-03-08T05:00:00Z"), day + 25 * HOUR - 1)
    assert hours_long(days)[0] == 23 and hours_long(days)[-1] == 25


def test_lord_howe_moves_by_half_an_hour() -> None:
    lord_howe = zone("Australia/Lord_Howe")
    # 2026-04-05 02:00 +11:00 becomes 01:30 +10:30: the 01 o'clock hour is cut in two.
    back = check_buckets(
        lord_howe, Interval.HOUR, at("2026-04-04T13:00:00Z"), at("2026-04-04T16:59:59Z")
    )
    assert texts(back) == [
        ("2026-04-05T00:00:00+11:00", "2026-04-05T00:59:59+11:00"),
        ("2026-04-05T01:00:00+11:00", "2026-04-05T01:59:59+11:00"),
        ("2026-04-05T01:30:00+10:30", "2026-04-05T01:59:59+10:30"),
        ("2026-04-05T02:00:00+10:30", "2026-04-05T02:59:59+10:30"),
        ("2026-04-05T03:00:00+10:30", "2026-04-05T03:29:59+10:30"),
    ]
    # 2026-10-04 02:00 +10:30 becomes 02:30 +11:00: the 02 o'clock hour has 30 minutes.
    forward = check_buckets(
        lord_howe, Interval.HOUR, at("2026-10-03T13:30:00Z"), at("2026-10-03T16:59:59Z")
    )
    assert [s for s, _ in texts(forward)] == [
        "2026-10-04T00:00:00+10:30",
        "2026-10-04T01:00:00+10:30",
        "2026-10-04T02:30:00+11:00",
        "2026-10-04T03:00:00+11:00",
    ]
    assert hours_long(forward)[:3] == [1, 1, 0.5]
    days = check_buckets(
        lord_howe, Interval.DAY, at("2026-04-03T13:00:00Z"), at("2026-10-04T13:00:00Z")
    )
    lengths = hours_long(days)
    assert lengths[1] == 24.5 and lengths[-2] == 23.5 and set(lengths[2:-2]) == {24}


def test_kathmandu_hours_start_at_a_quarter_past_utc() -> None:
    kathmandu = zone("Asia/Kathmandu")
    hours = check_buckets(
        kathmandu, Interval.HOUR, at("2026-01-01T00:00:00Z"), at("2026-01-01T02:59:59Z")
    )
    assert texts(hours) == [
        ("2026-01-01T05:45:00+05:45", "2026-01-01T05:59:59+05:45"),
        ("2026-01-01T06:00:00+05:45", "2026-01-01T06:59:59+05:45"),
        ("2026-01-01T07:00:00+05:45", "2026-01-01T07:59:59+05:45"),
        ("2026-01-01T08:00:00+05:45", "2026-01-01T08:44:59+05:45"),
    ]
    assert hours_long(hours) == [0.25, 1, 1, 0.75]


@pytest.mark.parametrize(
    ("start", "end", "weeks"),
    [
        # 2026 has 53 ISO weeks: W53 runs Mon 2026-12-28 .. Sun 2027-01-03.
        (
            "2026-12-21T00:00:00Z",
            "2027-01-10T23:59:59Z",
            ["2026-12-21", "2026-12-28", "2027-01-04"],
        ),
        # 2020-12-31 is a Thursday: the week holding New Year starts in December.
        ("2020-12-31T00:00:00Z", "2021-01-04T00:00:00Z", ["2020-12-31", "2021-01-04"]),
        ("2024-12-30T00:00:00Z", "2025-01-05T23:59:59Z", ["2024-12-30"]),
    ],
)
def test_iso_weeks_start_on_monday_across_new_year(start: str, end: str, weeks: list[str]) -> None:
    got = check_buckets(zone("UTC"), Interval.WEEK, at(start), at(end))
    assert [s[:10] for s, _ in texts(got)] == weeks
    assert all(date.fromisoformat(s[:10]).weekday() == 0 for s, _ in texts(got)[1:])


def test_quarters_months_and_years_in_oslo() -> None:
    oslo = zone("Europe/Oslo")
    start, end = at("2025-12-31T23:00:00Z"), at("2026-12-31T22:59:59Z")  # 2026 in Oslo
    quarters = check_buckets(oslo, Interval.QUARTER, start, end)
    assert texts(quarters) == [
        ("2026-01-01T00:00:00+01:00", "2026-03-31T23:59:59+02:00"),
        ("2026-04-01T00:00:00+02:00", "2026-06-30T23:59:59+02:00"),
        ("2026-07-01T00:00:00+02:00", "2026-09-30T23:59:59+02:00"),
        ("2026-10-01T00:00:00+02:00", "2026-12-31T23:59:59+01:00"),
    ]
    months = check_buckets(oslo, Interval.MONTH, start, end)
    assert len(months) == 12 and texts(months)[2][0] == "2026-03-01T00:00:00+01:00"
    assert texts(months)[3][0] == "2026-04-01T00:00:00+02:00"
    years = check_buckets(oslo, Interval.YEAR, start, end)
    assert texts(years) == [("2026-01-01T00:00:00+01:00", "2026-12-31T23:59:59+01:00")]


def test_first_and_last_buckets_are_clipped_to_the_range() -> None:
    got = check_buckets(
        zone("Europe/Oslo"), Interval.MONTH, at("2026-01-15T10:20:30Z"), at("2026-03-02T00:00:00Z")
    )
    assert texts(got) == [
        ("2026-01-15T11:20:30+01:00", "2026-01-31T23:59:59+01:00"),
        ("2026-02-01T00:00:00+01:00", "2026-02-28T23:59:59+01:00"),
        ("2026-03-01T00:00:00+01:00", "2026-03-02T01:00:00+01:00"),
    ]
    one = check_buckets(
        zone("UTC"), Interval.YEAR, at("2026-05-05T05:05:05Z"), at("2026-05-05T05:05:05Z")
    )
    assert texts(one) == [("2026-05-05T05:05:05Z", "2026-05-05T05:05:05Z")]


def test_a_day_the_clock_skips_has_no_bucket() -> None:
    # Pacific/Apia went from 2011-12-29 23:59:59 -10:00 to 2011-12-31 00:00:00 +14:00.
    got = check_buckets(
        zone("Pacific/Apia"), Interval.DAY, at("2011-12-29T10:00:00Z"), at("2011-12-31T09:59:59Z")
    )
    assert [s[:10] for s, _ in texts(got)] == ["2011-12-29", "2011-12-31"]


def test_a_fall_back_before_midnight_stays_in_the_day_reached() -> None:
    # America/St_Johns until 2011: 00:01 -02:30 became 23:01 -03:30 of the day before.
    st_johns = zone("America/St_Johns")
    days = check_buckets(
        st_johns, Interval.DAY, at("2008-11-01T02:30:00Z"), at("2008-11-03T03:29:59Z")
    )
    assert hours_long(days) == [24, 25]
    hours = check_buckets(
        st_johns, Interval.HOUR, at("2008-11-02T02:30:00Z"), at("2008-11-02T04:29:59Z")
    )
    assert [s for s, _ in texts(hours)] == [
        "2008-11-02T00:00:00-02:30",
        "2008-11-01T23:01:00-03:30",
        "2008-11-02T00:00:00-03:30",
    ]


@pytest.mark.parametrize(
    ("interval", "span", "count"),
    [
        (Interval.HOUR, 1000 * HOUR, 1000),
        (Interval.HOUR, 1000 * HOUR + 1, 1001),
        (Interval.DAY, 1000 * DAY, 1000),
        (Interval.DAY, 1000 * DAY + 1, 1001),
    ],
)
def test_at_most_1000_buckets(interval: Interval, span: int, count: int) -> None:
    start = at("2001-01-01T00:00:00Z")
    if count <= MAX_BUCKETS:
        assert len(series(zone("UTC"), interval, start, start + span - 1)) == count
    else:
        with pytest.raises(TooManyBuckets, match="more than 1,000"):
            series(zone("UTC"), interval, start, start + span - 1)


def test_the_whole_valid_range() -> None:
    with pytest.raises(TooManyBuckets):
        series(zone("UTC"), Interval.HOUR, 0, MAX_EPOCH)
    with pytest.raises(ValueError):
        series(zone("UTC"), Interval.DAY, 5, 4)
    with pytest.raises(ValueError):
        series(zone("UTC"), Interval.DAY, 0, MAX_EPOCH + 1)
    kiritimati = zone("Pacific/Kiritimati")  # +14:00: its clock passes 9999 before UTC does
    last = check_buckets(kiritimati, Interval.YEAR, at("9998-06-01T00:00:00Z"), MAX_EPOCH)
    assert texts(last)[-1] == ("9999-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z")
    first = check_buckets(zone("America/New_York"), Interval.YEAR, 0, at("1971-06-01T00:00:00Z"))
    assert [s for s, _ in texts(first)] == [
        "1969-12-31T19:00:00-05:00",
        "1970-01-01T00:00:00-05:00",
        "1971-01-01T00:00:00-05:00",
    ]


@pytest.mark.parametrize(
    ("second", "offset", "text"),
    [
        (at("2026-03-01T00:00:00+01:00"), 3600, "2026-03-01T00:00:00+01:00"),
        (at("2026-03-01T00:00:00-09:30"), -34200, "2026-03-01T00:00:00-09:30"),
        (0, 0, "1970-01-01T00:00:00Z"),
        (0, -18000, "1969-12-31T19:00:00-05:00"),
        (at("1971-06-01T00:00:00Z"), -2670, "1971-06-01T00:00:00Z"),  # Monrovia's -00:44:30
        (MAX_EPOCH, 50400, "9999-12-31T23:59:59Z"),
    ],
)
def test_format_local(second: int, offset: int, text: str) -> None:
    assert format_local(second, offset) == text


def test_zones_come_from_the_tzdata_package() -> None:
    names = zone_names()
    assert {"UTC", "Europe/Oslo", "Asia/Kathmandu", "Australia/Lord_Howe"} <= names
    assert len(names) > 400
    for bad in [
        "",
        "Mars/Olympus",
        "../../etc/passwd",
        "europe/oslo",
        "Europe/Oslo\x00",
        "zone.tab",
    ]:
        with pytest.raises(KeyError):
            zone(bad)
    assert zone("Europe/Oslo").key == "Europe/Oslo"


ZONES = sorted(zone_names())
SPANS = {
    Interval.HOUR: 1000 * HOUR,
    Interval.DAY: 1000 * DAY,
    Interval.WEEK: 19 * 365 * DAY,
    Interval.MONTH: 40 * 365 * DAY,
    Interval.QUARTER: 60 * 365 * DAY,
    Interval.YEAR: 80 * 365 * DAY,
}


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(ZONES),
    interval=st.sampled_from(list(Interval)),
    start=st.integers(0, at("2060-01-01T00:00:00Z")),
    fraction=st.floats(0, 1),
)
def test_edges_equal_the_oracle_in_any_zone(
    name: str, interval: Interval, start: int, fraction: float
) -> None:
    end = min(MAX_EPOCH, start + int(fraction * SPANS[interval]))
    try:
        check_buckets(zone(name), interval, start, end)
    except TooManyBuckets:
        assert len(oracle_edges(zone(name), interval, start, end)) > MAX_BUCKETS


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(
        ["Europe/Oslo", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
    ),
    interval=st.sampled_from([Interval.HOUR, Interval.DAY]),
    year=st.integers(1970, 2040),
    march=st.booleans(),
    hours=st.integers(1, 120),
)
def test_edges_around_dst_changes(
    name: str, interval: Interval, year: int, march: bool, hours: int
) -> None:
    # Northern changes are in March/October-November, Lord Howe's in April/October.
    month = 3 if march else 10
    start = at(f"{year}-{month:02d}-01T00:00:00Z")
    for week in range(0, 6):
        a = start + week * 7 * DAY
        check_buckets(
            zone(name), interval, a, a + hours * HOUR * (1 if interval is Interval.HOUR else 24) - 1
        )
