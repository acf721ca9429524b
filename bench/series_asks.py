"""The series bench/series_latency.py asks for, and the ways it counts one: `GET /series` on
the API, one POST count per bucket, ZCOUNT per bucket on a sorted set per org (loaded here),
and PostgreSQL's `GROUP BY date_trunc(...)`; `want` is the oracle's answer to each."""

from __future__ import annotations

import json
import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import redis

from api.intervals import Bucket, Interval, first_reach, offset_at, series, zone
from bench.http_client import HttpClient
from bench.ranges import DAY, EPOCH, PATH, SECOND_SLACK, Query, api_call
from events.schema import parse_instant
from tests.support.oracles import ExactCounts

# name, interval, buckets, how many local periods the range spans
SHAPES = (
    ("24 hourly", Interval.HOUR, 24, 1),
    ("31 daily", Interval.DAY, 31, 31),
    ("52 weekly", Interval.WEEK, 52, 52),
    ("12 monthly", Interval.MONTH, 12, 12),
    ("366 daily", Interval.DAY, 366, 366),
)
PG_SQL = (
    "SELECT date_trunc(%s, occurred_at, %s), COUNT(*) FROM records WHERE org_id = %s AND "
    "occurred_at BETWEEN %s AND %s GROUP BY 1"
)


@dataclass(frozen=True)
class Ask:
    """One series to count: org, zone, interval, inclusive bounds, and its buckets."""

    shape: str
    org: str
    tz: str
    interval: Interval
    start: int
    end: int
    buckets: list[Bucket]

    def path(self) -> str:
        stamp = {k: datetime.fromtimestamp(v, UTC).isoformat() for k, v in self.bounds().items()}
        query = {"org_id": self.org, "interval": self.interval.value, "tz": self.tz, **stamp}
        return f"{PATH}/series?{urlencode(query)}"

    def bounds(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end}

    def edges(self) -> list[int]:
        return [b.start for b in self.buckets] + [self.end + 1]


def make_asks(
    rng: random.Random,
    shape: tuple[str, Interval, int, int],
    tz_name: str,
    orgs: Sequence[str],
    lo: int,
    hi: int,
    n: int,
) -> list[Ask]:
    """`n` series of a shape: each from a random local period start, whole periods."""
    name, interval, _, periods = shape
    tz = zone(tz_name)
    asks: list[Ask] = []
    while len(asks) < n:
        day = datetime(1970, 1, 1) + timedelta(days=rng.randrange(lo // DAY + 8, hi // DAY - 400))
        if interval is Interval.WEEK:
            day -= timedelta(days=day.weekday())
        elif interval is Interval.MONTH:
            day = day.replace(month=1, day=1)
        first = first_reach(tz, day)
        last = first_reach(tz, _advance(day, interval, periods)) - 1
        if interval is Interval.HOUR and offset_at(tz, first) != offset_at(tz, last):
            continue  # a DST day: PostgreSQL's hours are not ours there (module doc)
        asks.append(
            Ask(
                name,
                rng.choice(orgs),
                tz_name,
                interval,
                first,
                last,
                series(tz, interval, first, last),
            )
        )
    return asks


def _advance(day: datetime, interval: Interval, periods: int) -> datetime:
    if interval is Interval.HOUR:
        return day + timedelta(days=1)
    if interval is Interval.DAY:
        return day + timedelta(days=periods)
    if interval is Interval.WEEK:
        return day + timedelta(weeks=periods)
    return day.replace(year=day.year + periods // 12)


def want(oracle: ExactCounts, ask: Ask) -> list[int]:
    """The oracle's count of every bucket."""
    return [oracle.count(ask.org, b.start, b.end) for b in ask.buckets]


def api_series(client: HttpClient) -> Callable[[Ask], Any]:
    """GET the series; the raw body (decoded by `api_counts` after the clock stops)."""

    def call(ask: Ask) -> Any:
        status, body = client.get(ask.path())
        if status != 200:
            raise RuntimeError(f"GET {ask.path()} answered {status}: {body[:300]!r}")
        return body

    return call


def api_counts(ask: Ask, body: Any) -> list[int]:
    """The counts of a series body, after checking its buckets are the ones asked for."""
    if isinstance(body, list):
        return body
    got = json.loads(body)
    starts = [parse_instant(b["start"])[1] for b in got["buckets"]]
    if starts != [b.start for b in ask.buckets]:
        raise SystemExit(f"BUCKET MISMATCH for {ask.path()}")
    return [b["record_count"] for b in got["buckets"]]


def posts(client: HttpClient) -> Callable[[Ask], list[int]]:
    post = api_call(client)
    return lambda ask: [post(Query("", ask.org, b.start, b.end)) for b in ask.buckets]


def zset_series(client: redis.Redis, prefix: str) -> Callable[[Ask], list[int]]:
    def call(ask: Ask) -> list[int]:
        pipe = client.pipeline(transaction=False)
        for b in ask.buckets:
            pipe.zcount(f"{prefix}:zset:{{{ask.org}}}", b.start, b.end)
        return [int(c) for c in pipe.execute()]

    return call


def pg_series(conn: Any) -> Callable[[Ask], list[int]]:
    cur = conn.cursor()

    def call(ask: Ask) -> list[int]:
        start, end = EPOCH + timedelta(seconds=ask.start), EPOCH + timedelta(seconds=ask.end)
        params = (ask.interval.value, ask.tz, ask.org, start, end + SECOND_SLACK)
        cur.execute(PG_SQL, params, prepare=True)
        counts = [0] * len(ask.buckets)
        edges = ask.edges()
        for first, count in cur.fetchall():
            counts[bisect_right(edges, max(int(first.timestamp()), ask.start)) - 1] += int(count)
        return counts

    return call


def load_zsets(client: redis.Redis, prefix: str, events: Sequence[tuple[str, int]]) -> None:
    """The sorted-set baseline: `zset:{org}` scored by second, one member per event."""
    pipe = client.pipeline(transaction=False)
    for i, (org, second) in enumerate(events):
        pipe.zadd(f"{prefix}:zset:{{{org}}}", {str(i): second})
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
