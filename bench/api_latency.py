"""POST-count latency per span and requests/s of the API, against PostgreSQL on the same events.

    .venv/bin/python -m bench.api_latency [--events 2000000] [--orgs 5] [--requests 500]
                                          [--clients 16] [--seconds 10] [--quick]
                                          [--quiet 25] [--quiet-wait 300] [--attempts 3]

Publishes `--events` distinct events (plus 1 % producer retries) for `--orgs` orgs spread
over 12 years with `events.produce`, projects them with the real projector
(`python -m projector`) and serves them with the real API (`python -m api`: gunicorn,
gevent workers, WEB_CONCURRENCY=2, LOG_LEVEL=WARNING, bound to 127.0.0.1). A temporary
PostgreSQL (bench/pg.py) holds the same distinct (org_id, second) pairs in `records` with a
btree index on (org_id, occurred_at).

Latency, concurrency 1: `--requests` ranges per span (1 s, 1 day, 90 days, 1 year,
10 years) at random orgs and positions, shuffled together, each POSTed once over one
keep-alive connection; the same ranges then go to Redis directly (the count round trip the
API makes, without HTTP) and to PostgreSQL (`COUNT(*) ... BETWEEN`, prepared). Every API
count must equal PostgreSQL's and an in-memory oracle's, or the bench fails.
Throughput: `--clients` greenlets (gevent sockets, one keep-alive connection each, in this
process) POST fresh ranges of mixed spans for `--seconds`; their counts are checked too.
The machine has 2 cores, shared with whatever else runs: before each measured phase the
bench waits (at most `--quiet-wait` s) until other processes use <= `--quiet` % of a core;
a phase during which they used over twice that is run again (at most `--attempts` runs,
fresh ranges for the API; the least disturbed run is kept, its counts checked like all).
It reports the CPU that other work used during each phase and per process under load.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.common import machine, table, verdicts
from bench.cpu import CpuMeter
from bench.http_client import HttpClient
from bench.load import Load, checked_load, pool_size, python_throughput, wrk_throughput
from bench.quiet import add_quiet_flags, quietly
from bench.ranges import SPANS, Query, api_call, check, make_queries, pg_call
from bench.stats import ms, pct, timed
from bench.world import DATA_YEARS, World, publish
from events.produce import Plan
from tests.support.oracles import ExactCounts

TARGET_P99_MS, TARGET_RATIO, TARGET_RPS = 5.0, 50.0, 1500.0


def load_run(
    port: int, pids: dict[str, int], oracle: ExactCounts, plan: Plan, args: argparse.Namespace
) -> tuple[Load, dict[str, float]]:
    """Warm up, then the measured throughput run with CPU use per process (% of one core)."""
    seeds = iter(range(20_000, 10**9, 1000))
    orgs, lo, hi = plan.orgs, plan.start_ms // 1000, plan.end_ms // 1000

    def run_load(seconds: float) -> Load:
        seed, size = next(seeds), pool_size(seconds, args.clients)
        pools = [
            make_queries(random.Random(seed + i), orgs, lo, hi, size // len(SPANS) + 1)
            for i in range(args.clients)
        ]
        if args.load_client == "wrk":
            return wrk_throughput(port, pools, seconds, args.wrk_threads)
        return python_throughput(port, pools, seconds)

    load, meter = checked_load("throughput", run_load, oracle, pids, args, "API under load")
    return load, meter.percent


def run(args: argparse.Namespace) -> None:
    """Set everything up, measure, check every count, print the tables and verdicts."""
    print(f"# api_latency on {machine()}")
    print(f"command: {' '.join(['python -m bench.api_latency', *sys.argv[1:]])}")
    with World("api-latency") as world:
        print(world.describe())
        print(world.start_pg())
        plan, summary = publish(world.settings, args.events, args.orgs, args.seed)
        print(
            f"published {summary.sent:,} messages ({len(summary.events or []):,} distinct "
            f"events, {summary.duplicates:,} retries) for {len(plan.orgs)} orgs over "
            f"{DATA_YEARS} years in {summary.elapsed_s:.1f}s"
        )

        def copy(events: list[tuple[str, int]]) -> None:
            rows = world.copy_to_pg(events)
            print(
                f"PostgreSQL: {rows:,} rows copied, indexed, vacuumed (all pages all-visible) "
                f"in {time.perf_counter() - world.projecting_since:.1f}s"
            )

        oracle = world.project(summary, copy)
        print(f"projected in {world.projected_s:.1f}s")
        report(measure(args, world, oracle, plan), args)


@dataclass
class Results:
    """What one run measured."""

    queries: list[Query]
    want: list[int]
    api: list[tuple[float, int]]
    direct: list[tuple[float, int]]
    sql: list[tuple[float, int]]
    load: Load | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    other: dict[str, float] = field(default_factory=dict)


def measure(args: argparse.Namespace, world: World, oracle: ExactCounts, plan: Plan) -> Results:
    """The measurements proper, on running services; fails loudly on any wrong count."""
    store, port = world.store, world.settings.port
    rng = random.Random(args.seed)
    lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
    warm = make_queries(rng, plan.orgs, lo, hi, 20)
    pids = world.pids()
    other: dict[str, float] = {}
    http = HttpClient(port)
    timed(warm, api_call(http))

    def api_attempt() -> tuple[list[Query], list[tuple[float, int]]]:
        qs = make_queries(rng, plan.orgs, lo, hi, args.requests)  # fresh: every POST creates
        out = timed(qs, api_call(http))
        check("API", qs, [c for _, c in out], [oracle.count(q.org, q.start, q.end) for q in qs])
        return qs, out

    (queries, api), meter = quietly("API", api_attempt, pids, args)
    http.close()
    other["API"] = meter.other
    want = [oracle.count(q.org, q.start, q.end) for q in queries]

    def phase(label: str, call: Callable[[Query], int]) -> list[tuple[float, int]]:
        timed(warm, call)
        out, meter = quietly(label, lambda: timed(queries, call), pids, args)
        other[label] = meter.other
        return out

    def direct_count(q: Query) -> int:
        return store.count_and_caught_up(q.org, q.start, q.end)[0]

    direct = phase("Redis count", direct_count)
    check("Redis count", queries, [c for _, c in direct], want)
    with world.pg.connect() as conn:
        for org in plan.orgs:  # read each org's whole index once: a warm cache
            conn.execute("SELECT COUNT(*) FROM records WHERE org_id = %s", (org,))
        sql = phase("PostgreSQL", pg_call(conn))
    check("PostgreSQL", queries, [c for _, c in sql], want)
    print(f"all {len(queries):,} ranges: API count == PostgreSQL == Redis direct == oracle")
    results = Results(queries, want, api, direct, sql, other=other)
    results.load, results.cpu = load_run(port, pids, oracle, plan, args)
    other["throughput"] = results.cpu[CpuMeter.OTHER]
    print(f"all {len(results.load.answered):,} ranges under load: API count == oracle\n")
    return results


def report(r: Results, args: argparse.Namespace) -> None:
    """Print the figures, the ratios and a PASS/MISS line per target."""
    rows, worst, ratio_year = [], (0.0, ""), 0.0
    for name, _ in SPANS:
        idx = [i for i, q in enumerate(r.queries) if q.span == name]
        a, d, p = ([t[i][0] for i in idx] for t in (r.api, r.direct, r.sql))
        mean = sum(r.want[i] for i in idx) / len(idx)
        rows.append(
            [
                name,
                f"{mean:,.0f}",
                f"{ms(a, 50):.2f}",
                f"{ms(a, 99):.2f}",
                f"{ms(d, 50):.2f}",
                f"{ms(p, 50):.2f}",
                f"{ms(p, 99):.2f}",
                f"{pct(p, 50) / pct(a, 50):.1f}x",
                f"{pct(p, 99) / pct(a, 99):.1f}x",
                f"{pct(p, 50) / pct(d, 50):.1f}x",
            ]
        )
        worst = max(worst, (ms(a, 99), name))
        if name == "1 year":
            ratio_year = pct(p, 50) / pct(a, 50)
    headers = ["span", "mean count", "API p50", "API p99", "Redis count p50", "PG p50"]
    headers += ["PG p99", "PG/API p50", "PG/API p99", "PG/Redis p50"]
    print(f"Latency at concurrency 1, {args.requests} ranges per span (ms):\n")
    print(table(headers, rows))
    print(
        "\nother work on the machine (% of one core) during each phase: "
        + ", ".join(f"{k} {v:.0f}" for k, v in r.other.items())
        + "\n"
    )
    load = r.load
    assert load is not None
    print(
        f"Throughput, {args.clients} clients ({args.load_client}), mixed spans, "
        f"{args.seconds:.0f} s: {load.rate:,.0f} req/s ({len(load.answered):,} requests; "
        f"latency p50 {1000 * load.p50:.2f} ms, p99 {1000 * load.p99:.2f} ms)\n"
    )
    print(table(["process", "CPU % of one core"], [[k, f"{v:.0f}"] for k, v in r.cpu.items()]))
    targets = [
        (
            f"p99 <= {TARGET_P99_MS:.0f} ms at every span",
            f"worst {worst[0]:.2f} ms ({worst[1]})",
            worst[0] <= TARGET_P99_MS,
        ),
        (
            f">= {TARGET_RATIO:.0f}x faster than PostgreSQL, 1 year (p50)",
            f"{ratio_year:.1f}x",
            ratio_year >= TARGET_RATIO,
        ),
        (
            f">= {TARGET_RPS:,.0f} req/s at {args.clients} clients",
            f"{load.rate:,.0f} req/s",
            load.rate >= TARGET_RPS,
        ),
    ]
    print()
    print(verdicts(targets))


def main() -> None:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="distinct events")
    parser.add_argument("--orgs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500, help="ranges per span")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--load-client",
        choices=("wrk", "python"),
        default="wrk",
        help="throughput load: wrk (installed with apt-get if missing) or the gevent client",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (-t)")
    add_quiet_flags(parser)
    parser.add_argument("--quick", action="store_true", help="smoke run: 50k events, 50 ranges")
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="single Redis vs 3-master cluster side by side (bench/api_cluster.py)",
    )
    parser.add_argument(
        "--busy-org",
        action="store_true",
        help="one busy org, our API vs the same service on PostgreSQL (bench/busy_org.py)",
    )
    parser.add_argument("--busy-events", type=int, default=5_000_000, help="with --busy-org")
    parser.add_argument("--quiet-events", type=int, default=10_000, help="per quiet org, ditto")
    args = parser.parse_args()
    if args.quick:  # at most these: a smoke test may ask for less
        args.events, args.requests = min(args.events, 50_000), min(args.requests, 50)
        args.seconds = min(args.seconds, 3.0)
    if args.redis_cluster:
        from bench import api_cluster

        api_cluster.run(args)
        return
    if args.busy_org:
        from bench import busy_org

        busy_org.run(args)
        return
    run(args)


if __name__ == "__main__":
    main()
