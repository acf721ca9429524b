"""GET /series latency per shape and zone, beside the single POST count and three baselines.

    .venv/bin/python -m bench.series_latency [--events 2000000] [--orgs 5] [--requests 200]
                                             [--zones UTC,Europe/Oslo,Asia/Kathmandu]
                                             [--posts 20] [--quick] [--quiet 25] ...

Same data and services as bench/api_latency.py (both set up by bench/world.py): `--events` distinct
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
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import machine, table, verdicts
from bench.http_client import HttpClient
from bench.quiet import add_quiet_flags, quietly
from bench.ranges import DAY, Query, api_call
from bench.series_asks import (
    SHAPES,
    Ask,
    api_counts,
    api_series,
    load_zsets,
    make_asks,
    pg_series,
    posts,
    want,
    zset_series,
)
from bench.stats import ms, timed
from bench.world import DATA_YEARS, World, publish
from events.produce import Plan
from tests.support.oracles import ExactCounts

TARGET_MS = 10.0


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
    with World("series-latency") as world:
        world.start_pg()
        plan, summary = publish(world.settings, args.events, args.orgs, args.seed)
        print(
            f"published {summary.sent:,} messages ({len(summary.events or []):,} distinct) "
            f"for {len(plan.orgs)} orgs over {DATA_YEARS} years in {summary.elapsed_s:.1f}s"
        )

        def copy(events: list[tuple[str, int]]) -> None:
            world.copy_to_pg(events)
            load_zsets(world.client, world.settings.redis_key_prefix, events)

        oracle = world.project(summary, copy)
        report(measure(args, world, oracle, plan), args)


def measure(args: argparse.Namespace, world: World, oracle: ExactCounts, plan: Plan) -> list[Row]:
    """Every phase per shape and zone; fails loudly on any wrong bucket."""
    settings, store, client = world.settings, world.store, world.client
    rng = random.Random(args.seed)
    lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
    pids = world.pids()
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
    with world.pg.connect() as conn:
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
    target = f"API p99 <= {TARGET_MS:.0f} ms, 366 daily buckets"
    print()
    print(verdicts([(target, f"worst {worst[0]:.2f} ms ({worst[1]})", worst[0] <= TARGET_MS)]))


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
    if args.quick:  # at most these: a smoke test may ask for less
        args.events, args.requests = min(args.events, 50_000), min(args.requests, 20)
        args.posts = min(args.posts, 3)
    run(args)


if __name__ == "__main__":
    main()
