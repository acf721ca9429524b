"""Pure calendar arithmetic: the buckets of a series, the calendar intervals of a time zone.

A series splits an inclusive range [start, end] of UTC epoch seconds at the edges of the
zone's calendar intervals; the first and last bucket are clipped to the range. What an edge is:

- day, week (ISO, Monday first), month, quarter, year: a period starts at the first instant
  at which the zone's clock reads its first moment (`2026-03-01T00:00`) or later. So a day
  across a DST change is 23 or 25 hours long, a day that starts inside a DST gap starts when
  the clock jumps (Pacific/Apia skipped 2011-12-30 altogether: no bucket), and where a
  fall-back lands before midnight (America/St_Johns before 2011, at 00:01) the repeated
  minutes belong to the day the clock had already reached.
- hour: the instants that share the local date, the local hour *and* the UTC offset. An hour
  bucket is never longer than 3,600 s: a fall-back night has both 02:00 hours (Oslo: 25
  buckets), a spring-forward night none of the skipped one (23), and where the offset moves by
  30 minutes (Australia/Lord_Howe) the hour holding the change is cut in two, e.g. 01:00-01:59
  +11:00 then 01:30-01:59 +10:30. Zones at +05:45 (Asia/Kathmandu) have hours at :15 UTC.

Zones come from the `tzdata` package only, never from the system's files, so every API
process with the same package version draws the same edges.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

from events.schema import MAX_EPOCH, MIN_EPOCH

MAX_BUCKETS = 1000
HOUR = 3_600
_DAY = 86_400
_EPOCH = datetime(1970, 1, 1)
_EPOCH_DAY = _EPOCH.toordinal()
_SECOND = timedelta(seconds=1)
_MAX_YEAR = 9999
_LAST_DAY = date(_MAX_YEAR, 12, 31).toordinal()
_NEVER = _LAST_DAY + 1


class Interval(enum.StrEnum):
    """The calendar intervals a series can be cut into."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class TooManyBuckets(ValueError):
    """The range holds more than MAX_BUCKETS intervals."""


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """Every IANA zone name the `tzdata` package ships."""
    listing = resources.files("tzdata").joinpath("zones").read_text("utf-8")
    return frozenset(line.strip() for line in listing.splitlines() if line.strip())


@cache  # bounded: only names in zone_names() get here
def _load(name: str) -> ZoneInfo:
    folder, _, leaf = name.rpartition("/")
    package = "tzdata.zoneinfo" + ("." + folder.replace("/", ".") if folder else "")
    with resources.files(package).joinpath(leaf).open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


def zone(name: str) -> ZoneInfo:
    """The zone called `name` from the `tzdata` package; KeyError for any other name."""
    if name not in zone_names():
        raise KeyError(name)
    return _load(name)


@dataclass(frozen=True)
class Bucket:
    """Inclusive whole seconds [start, end]; `offset` of each bound in seconds east of UTC."""

    start: int
    end: int
    start_offset: int
    end_offset: int


def offset_at(tz: ZoneInfo, second: int) -> int:
    """The zone's UTC offset (seconds east) at the instant `second`."""
    try:
        offset = datetime.fromtimestamp(second, tz).utcoffset()
    except (OverflowError, ValueError):
        # Local time is past 9999-12-31 (zones east of UTC in the last hours): no zone
        # changes its offset in the last days of year 9999, so ask two days earlier.
        return offset_at(tz, second - 2 * _DAY)
    return offset.days * _DAY + offset.seconds  # type: ignore[union-attr]


def _local_offsets(tz: ZoneInfo, local: datetime) -> tuple[int, int]:
    """The offsets the zone gives the wall time `local` (naive) with fold 0 and fold 1."""
    early, late = tz.utcoffset(local), tz.utcoffset(local.replace(fold=1))
    return (
        early.days * _DAY + early.seconds,  # type: ignore[union-attr]
        late.days * _DAY + late.seconds,  # type: ignore[union-attr]
    )


def _first_reach(tz: ZoneInfo, local: datetime, wall: int) -> tuple[int, int]:
    """(instant, offset there): the first instant at which the zone's clock reads `local`
    (naive, `wall` seconds after 1970-01-01T00:00 on that clock) or later."""
    before, after = _local_offsets(tz, local)
    early, late = wall - before, wall - after
    if early <= late:
        return early, before  # the time exists (in a fall-back fold, its first occurrence)
    # A gap: fold 0 reads it with the earlier offset, fold 1 with the later one, and the clock
    # jumps over `local` at the one transition in (late, early]: find it.
    lo, hi = late, early
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid + offset_at(tz, mid) >= wall:
            hi = mid
        else:
            lo = mid
    return hi, offset_at(tz, hi)


def first_reach(tz: ZoneInfo, local: datetime) -> int:
    """The first instant at which the zone's clock reads `local` (naive) or later."""
    return _first_reach(tz, local, (local - _EPOCH) // _SECOND)[0]


def _period_start(wall: datetime, interval: Interval) -> int:
    """The proleptic ordinal of the first day of the period holding the naive `wall`."""
    day = wall.toordinal()
    if interval is Interval.DAY:
        return day
    if interval is Interval.WEEK:
        return day - wall.weekday()
    month = 1 if interval is Interval.YEAR else wall.month
    if interval is Interval.QUARTER:
        month = (month - 1) // 3 * 3 + 1
    return date(wall.year, month, 1).toordinal()


def _next_start(day: int, interval: Interval) -> int:
    """The ordinal of the first day of the period after the one starting on day `day`."""
    if interval is Interval.DAY:
        return day + 1
    if interval is Interval.WEEK:
        return day + 7
    first = date.fromordinal(day)
    month = first.month - 1 + {Interval.MONTH: 1, Interval.QUARTER: 3, Interval.YEAR: 12}[interval]
    year = first.year + month // 12
    return date(year, month % 12 + 1, 1).toordinal() if year <= _MAX_YEAR else _NEVER


def _calendar_edges(
    tz: ZoneInfo, interval: Interval, start: int, end: int
) -> list[tuple[int, int, int]]:
    """(edge, offset, offset before) in (start, end] of the periods of a day or longer."""
    wall = start + offset_at(tz, start)
    if wall > MAX_EPOCH:
        return []  # already the last day of year 9999 on the zone's clock
    day = _period_start(_EPOCH + wall * _SECOND, interval)
    edges: list[tuple[int, int]] = []
    last = start
    while len(edges) <= MAX_BUCKETS:
        day = _next_start(day, interval)
        if day > _LAST_DAY:
            break
        edge, offset, before = _day_start(tz, day)
        if edge > end:
            break
        if edge > last:  # a period the clock skips entirely has no bucket
            edges.append((edge, offset, before))
            last = edge
    return edges


@lru_cache(maxsize=65_536)
def _day_start(tz: ZoneInfo, day: int) -> tuple[int, int, int]:
    """(instant, offset there, offset a second before) at which the zone's clock first reaches
    local day `day` (an ordinal). Memoised per process: reports ask for the same days again."""
    edge, offset = _first_reach(tz, datetime.fromordinal(day), (day - _EPOCH_DAY) * _DAY)
    return edge, offset, offset_at(tz, edge - 1)


def _change_after(tz: ZoneInfo, lo: int, hi: int, offset: int) -> int:
    """The first instant in (lo, hi] whose offset is not `offset` (one change in there)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset_at(tz, mid) == offset:
            lo = mid
        else:
            hi = mid
    return hi


def _hour_edges(tz: ZoneInfo, start: int, end: int) -> list[tuple[int, int, int]]:
    """(edge, offset, offset before) in (start, end] of the zone's hours: whole local hours
    and offset changes."""
    edges: list[tuple[int, int, int]] = []
    t, offset = start, offset_at(tz, start)
    while len(edges) <= MAX_BUCKETS:
        wall = t + offset
        edge = min(wall - wall % HOUR + HOUR - offset, end + 1)  # the next whole local hour
        if offset_at(tz, edge - 1) != offset:  # the offset changes first
            edge = _change_after(tz, t, edge - 1, offset)
        if edge > end:
            break
        before, t, offset = offset, edge, offset_at(tz, edge)
        edges.append((t, offset, before))
    return edges


def series(tz: ZoneInfo, interval: Interval, start: int, end: int) -> list[Bucket]:
    """The buckets of [start, end] (inclusive epoch seconds), in order; see the module doc.

    Raises TooManyBuckets past MAX_BUCKETS and ValueError for bounds outside the valid range.
    """
    if not MIN_EPOCH <= start <= end <= MAX_EPOCH:
        raise ValueError(f"invalid range [{start}, {end}]")
    if interval is Interval.HOUR:
        edges = _hour_edges(tz, start, end)
    else:
        edges = _calendar_edges(tz, interval, start, end)
    if len(edges) >= MAX_BUCKETS:
        raise TooManyBuckets(
            f"the range holds more than {MAX_BUCKETS:,} {interval.value} intervals in {tz.key}"
        )
    out: list[Bucket] = []
    first, first_offset = start, offset_at(tz, start)
    for edge, offset, before in edges:
        out.append(Bucket(first, edge - 1, first_offset, before))
        first, first_offset = edge, offset
    out.append(Bucket(first, end, first_offset, offset_at(tz, end)))
    return out


@lru_cache(maxsize=16_384)
def _date_text(days: int) -> str:
    d = date.fromordinal(_EPOCH_DAY + days)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T"


@lru_cache(maxsize=1_024)
def _offset_text(offset: int) -> str:
    if offset == 0:
        return "Z"
    sign, minutes = ("+" if offset > 0 else "-"), abs(offset) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@lru_cache(maxsize=65_536)  # bucket bounds repeat from one report to the next
def format_local(second: int, offset: int) -> str:
    """RFC 3339 at the offset, e.g. `2026-03-01T00:00:00+01:00`; `Z` for a zero offset or one
    that is not whole minutes (local mean time, such as Africa/Monrovia's until 1972), and for a
    local time past year 9999 (RFC 3339 has four-digit years)."""
    if offset % 60 or second + offset > MAX_EPOCH:
        offset = 0
    days, rest = divmod(second + offset, _DAY)
    clock = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    return _date_text(days) + clock + _offset_text(offset)
