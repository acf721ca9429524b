"""GET /series latency per shape and zone, beside the single POST count and three baselines.

    .venv/bin/python -m bench.series_latency [--events 2000000] [--orgs 5] [--requests 200]
                                             [--zones UTC,Europe/Oslo,Asia/Kathmandu]
                                             [--posts 20] [--quick] [--quiet 25] ...

Same data and services as bench/api_latency.py (whose helpers it uses): `--events` distinct
events (+1 % retries) for `--orgs` orgs over 12 years through Kafka and the real projector,
served by the real API (gunicorn, 2 gevent workers); PostgreSQL holds the same events.

Shapes: 24 hourly (a local day), 31 daily, 52 weekly, 12 monthly (a local calendar year) and
366 daily buckets, each starting at a random local period start, in each zone. Per shape and
zone, `--requests` series at random orgs, concurrency 1, one keep-alive connection:
- API: `GET /series` (HTTP, validation, edges, one Redis round trip, the JSON body);
- Redis direct: `CounterStore.count_series` (the one round trip, no HTTP);
- N POSTs: what a client does without the route, one POST count per bucket (first `--posts`
  series only: 366 POSTs a series is slow), each creating a snapshot it did not want;
- sorted set: ZCOUNT per bucket on `zset:{org}` (second -> event id), one pipeline;
- PostgreSQL: `GROUP BY date_trunc(interval, occurred_at, tz)` over the range.
Every bucket of every answer is checked against an in-memory oracle (the bench fails on any
difference). Hourly ranges avoid DST days: date_trunc merges the two 02:00 hours of a
fall-back night (PostgreSQL's hour there is not ours), so its answer could not be checked.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import redis

from api.intervals import Bucket, Interval, first_reach, offset_at, series, zone
from bench.api_latency import (
    DATA_YEARS,
    PATH,
    HttpClient,
    Oracle,
    Query,
    add_quiet_flags,
    api_call,
    ms,
    our_pids,
    publish,
    quietly,
    timed,
)
from bench.common import bench_settings, cleanup, machine, table
from bench.pg import PgServer, load_records
from config import Settings
from events.produce import Plan
from events.schema import parse_instant
from events.topics import end_offsets
from projector.buckets import MAX_SECOND
from projector.store import CounterStore
from scripts.harness import Proc, free_port, start_api, start_projector, wait_until

DAY = 86_400
# name, interval, buckets, how many local periods the range spans
SHAPES = (
    ("24 hourly", Interval.HOUR, 24, 1),
    ("31 daily", Interval.DAY, 31, 31),
    ("52 weekly", Interval.WEEK, 52, 52),
    ("12 monthly", Interval.MONTH, 12, 12),
    ("366 daily", Interval.DAY, 366, 366),
)
TARGET_MS = 10.0
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


def want(oracle: Oracle, ask: Ask) -> list[int]:
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
    epoch, slack = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=999_999)

    def call(ask: Ask) -> list[int]:
        start, end = epoch + timedelta(seconds=ask.start), epoch + timedelta(seconds=ask.end)
        params = (ask.interval.value, ask.tz, ask.org, start, end + slack)
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


@dataclass
class Row:
    shape: str
    tz: str
    buckets: float
    mean: float
    figures: dict[str, list[float]]


def run(args: argparse.Namespace) -> None:
    """Set up the data and services, measure every shape and zone, print the tables."""
    print(f"# series_latency on {machine()}")
    print(f"command: {' '.join(['python -m bench.series_latency', *sys.argv[1:]])}")
    settings = bench_settings("series-latency")
    settings = replace(settings, port=free_port(), log_level="WARNING", web_concurrency=2)
    pg = PgServer()
    client = redis.Redis.from_url(settings.redis_url)
    store = CounterStore(client, settings.redis_key_prefix, settings.record_events_topic)
    procs: list[Proc] = []
    try:
        pg.start()
        plan, summary = publish(settings, args.events, args.orgs, args.seed)
        events = summary.events or []
        print(
            f"published {summary.sent:,} messages ({len(events):,} distinct) "
            f"for {len(plan.orgs)} orgs over {DATA_YEARS} years in {summary.elapsed_s:.1f}s"
        )
        ends = end_offsets(settings.kafka_bootstrap_servers, settings.record_events_topic)
        procs.append(start_projector(settings))
        with pg.connect() as conn:
            load_records(conn, events)
        load_zsets(client, settings.redis_key_prefix, events)
        wait_until(
            lambda: all(store.positions().get(p, 0) >= e for p, e in ends.items() if e),
            3600,
            "projector to catch up",
            interval=0.2,
        )
        for org, n in sorted(summary.valid.items()):
            if store.count(org, 0, MAX_SECOND) != n:
                raise SystemExit(f"COUNT MISMATCH: {org}")
        procs.append(start_api(settings))
        oracle = Oracle(events)
        summary.events = events = []
        rows = measure(args, settings, pg, client, store, oracle, plan, procs)
        report(rows, args)
    finally:
        for proc in reversed(procs):
            proc.stop()
        pg.stop()
        client.close()
        cleanup(settings)


def measure(
    args: argparse.Namespace,
    settings: Settings,
    pg: PgServer,
    client: redis.Redis,
    store: CounterStore,
    oracle: Oracle,
    plan: Plan,
    procs: list[Proc],
) -> list[Row]:
    """Every phase per shape and zone; fails loudly on any wrong bucket."""
    rng = random.Random(args.seed)
    lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
    pids = our_pids(procs[-1], procs[0], client, pg)
    http = HttpClient(settings.port)
    rows: list[Row] = []
    single = [
        Query("1 year", rng.choice(plan.orgs), s, s + 365 * DAY - 1)
        for s in (rng.randrange(lo, hi - 365 * DAY) for _ in range(args.requests))
    ]
    timed(single[:20], api_call(http))
    out, _ = quietly("POST", lambda: timed(single, api_call(http)), pids, args)
    assert [c for _, c in out] == [oracle.count(q.org, q.start, q.end) for q in single]
    rows.append(Row("single POST count (1 year)", "UTC", 1, 0, {"API": [t for t, _ in out]}))
    with pg.connect() as conn:
        for org in plan.orgs:
            conn.execute("SELECT COUNT(*) FROM records WHERE org_id = %s", (org,))
        phases: dict[str, Callable[[Ask], Any]] = {
            "API": api_series(http),
            "Redis direct": lambda a: store.count_series(a.org, a.edges())[0],
            "sorted set": zset_series(client, settings.redis_key_prefix),
            "PostgreSQL": pg_series(conn),
            "N POSTs": posts(http),
        }
        wanted = set(args.shapes.split(",")) if args.shapes else {shape[0] for shape in SHAPES}
        for shape in (shape for shape in SHAPES if shape[0] in wanted):
            for tz in args.zones.split(","):
                asks = make_asks(rng, shape, tz, plan.orgs, lo, hi, args.requests)
                expected = [want(oracle, a) for a in asks]
                figures: dict[str, list[float]] = {}
                others: dict[str, float] = {}
                for label, call in phases.items():
                    chosen = asks[: args.posts] if label == "N POSTs" else asks
                    timed(chosen[:5], call)
                    out, meter = quietly(
                        f"{shape[0]} {tz} {label}", lambda c=call, q=chosen: timed(q, c), pids, args
                    )
                    others[label] = meter.other
                    for (_, got), ask, exp in zip(out, chosen, expected, strict=False):
                        if api_counts(ask, got) != exp:
                            raise SystemExit(f"COUNT MISMATCH {label} {ask.path()}")
                    figures[label] = [t for t, _ in out]
                mean_buckets = sum(len(a.buckets) for a in asks) / len(asks)
                mean_count = sum(sum(e) for e in expected) / len(expected)
                rows.append(Row(shape[0], tz, mean_buckets, mean_count, figures))
                print(
                    f"  {shape[0]} {tz}: API p99 {ms(figures['API'], 99):.2f} ms; other work "
                    + ", ".join(f"{k} {v:.0f}" for k, v in others.items())
                    + " % of a core"
                )
    http.close()
    return rows


def _row(r: Row) -> list[str]:
    """One table row: percentiles per phase and ratios to the API's median ("-": not run)."""
    f = r.figures
    api50 = ms(f["API"], 50)

    def cell(label: str, q: int) -> str:
        return f"{ms(f[label], q):.2f}" if label in f else "-"

    def ratio(label: str) -> str:
        return f"{ms(f[label], 50) / api50:.1f}x" if label in f else "-"

    cells = [cell("API", 50), cell("API", 99), cell("Redis direct", 50), cell("Redis direct", 99)]
    cells += [cell("N POSTs", 50), cell("sorted set", 50), cell("PostgreSQL", 50)]
    cells += [cell("PostgreSQL", 99), ratio("N POSTs"), ratio("PostgreSQL")]
    return [r.shape, r.tz, f"{r.buckets:.1f}", f"{r.mean:,.0f}", *cells]


def report(rows: list[Row], args: argparse.Namespace) -> None:
    """Print the latency table, ratios, and the verdict on the 366-daily target."""
    headers = [
        "series",
        "tz",
        "buckets",
        "mean total",
        "API p50",
        "API p99",
        "Redis p50",
        "Redis p99",
        "N POSTs p50",
        "sorted set p50",
        "PG p50",
        "PG p99",
        "N POSTs/API p50",
        "PG/API p50",
    ]
    lines = [_row(r) for r in rows]
    print(
        f"\nLatency at concurrency 1, {args.requests} series per row "
        f"(N POSTs: the first {args.posts}), ms:\n"
    )
    print(table(headers, lines))
    worst = max((ms(r.figures["API"], 99), r.tz) for r in rows if r.shape == "366 daily")
    verdict = "PASS" if worst[0] <= TARGET_MS else "MISS"
    print()
    print(
        table(
            ["target", "measured", "verdict"],
            [
                [
                    f"API p99 <= {TARGET_MS:.0f} ms, 366 daily buckets",
                    f"worst {worst[0]:.2f} ms ({worst[1]})",
                    verdict,
                ]
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--orgs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="series per shape and zone")
    parser.add_argument("--posts", type=int, default=20, help="series asked as N POSTs")
    parser.add_argument("--zones", default="UTC,Europe/Oslo,Asia/Kathmandu")
    parser.add_argument("--shapes", default="", help='only these, e.g. "366 daily,12 monthly"')
    parser.add_argument("--seed", type=int, default=13)
    add_quiet_flags(parser, wait=120, attempts=2)
    parser.add_argument("--quick", action="store_true", help="smoke run: 50k events, 20 series")
    args = parser.parse_args()
    if args.quick:
        args.events, args.requests, args.posts = 50_000, 20, 3
    run(args)


if __name__ == "__main__":
    main()
