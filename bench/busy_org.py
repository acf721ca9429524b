"""`bench/api_latency.py --busy-org`: one busy org, our API against the same service on
PostgreSQL (bench/pg_service.py), on the same events, in one run.

    .venv/bin/python -m bench.api_latency --busy-org [--busy-events 5000000]
        [--quiet-events 10000] [--requests 500] [--clients 16] [--seconds 10] [--quick]

Data: `--busy-events` distinct events for one org (default 1,000,000 a year) and
`--quiet-events` for each of 4 quiet orgs over the same 5 years ending now (+1 % retries),
published with `events.produce` (two plans), projected by the real projector, copied into a
temporary PostgreSQL (bench/pg.py). Our API and the PostgreSQL service (bench/pg_service.py)
run side by side under gunicorn with the API's config file (WEB_CONCURRENCY=2).

Latency, concurrency 1: `--requests` ranges per span (1 s, 1 day, 90 days, 1 year, 5 years),
80 % of them on the busy org, shuffled; each POSTed once to our API and once to the PG
service (fresh to both: every answer creates a snapshot), then counted on Redis directly
and by the bare SQL. Throughput: wrk (`--load-client python`: the gevent client) with
`--clients` connections POSTing fresh 1-year ranges (80 % busy) for `--seconds`, to each
service. Every count is checked against the oracle; a mismatch fails the run, a missed
target does not. `--quick`: at most 200,000 busy events, 2,000 per quiet org, 50 ranges per
span, 3 s of load.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from bench.common import machine, table, verdicts
from bench.http_client import HttpClient
from bench.load import Load, checked_load, pool_size, python_throughput, wrk_throughput
from bench.quiet import quietly
from bench.ranges import DAY, Query, api_call, check, pg_call, random_queries
from bench.ranges import SPANS as API_SPANS
from bench.stats import ms, pct, timed
from bench.world import World, distinct_plan
from config import Settings
from events.produce import Summary, produce
from scripts.harness import free_port, start_pg_service
from tests.support.oracles import ExactCounts

YEARS = 5
BUSY_ORG = "org-busy"
QUIET_ORGS = tuple(f"org-quiet-{i}" for i in range(1, 5))
BUSY_SHARE = 0.8
# api_latency's spans up to a year, then 5 years (5 x 365.25 days of data leave room for it)
SPANS = (*[s for s in API_SPANS if s[1] <= 365 * DAY], ("5 years", 1826 * DAY))
LOAD_SPAN = "1 year"
TARGET_P99_MS, TARGET_YEAR, TARGET_5Y, TARGET_RPS = 3.0, 20.0, 50.0, 2.0


def pick_org(rng: random.Random) -> str:
    """The busy org BUSY_SHARE of the time, else a quiet one."""
    return BUSY_ORG if rng.random() < BUSY_SHARE else rng.choice(QUIET_ORGS)


def busy_queries(
    rng: random.Random, lo: int, hi: int, n: int, spans: Sequence[tuple[str, int]] = SPANS
) -> list[Query]:
    """`n` ranges per span inside [lo, hi], mostly of the busy org, shuffled together."""
    return random_queries(rng, pick_org, lo, hi, n, spans)


def publish(settings: Settings, args: argparse.Namespace) -> tuple[int, int, Summary]:
    """Publish the busy and the quiet plan; (lo, hi) seconds of the data and the summary."""
    end_ms = int(time.time()) * 1000
    start_ms = end_ms - int(YEARS * 365.25 * DAY * 1000)
    busy = distinct_plan((BUSY_ORG,), args.busy_events, start_ms, end_ms, args.seed)
    quiet = distinct_plan(
        QUIET_ORGS, args.quiet_events * len(QUIET_ORGS), start_ms, end_ms, args.seed + 1
    )
    topic = settings.record_events_topic
    summary = produce(busy, settings, topic, workers=2, keep_events=True)
    elapsed = summary.elapsed_s
    more = produce(quiet, settings, topic, workers=2, keep_events=True)
    summary.merge(more)
    summary.elapsed_s = elapsed + more.elapsed_s
    return start_ms // 1000, end_ms // 1000, summary


def run(args: argparse.Namespace) -> None:
    """Set up both services on the same events, measure, check, print tables and verdicts."""
    if args.quick:  # at most these: a smoke test may ask for less
        args.busy_events = min(args.busy_events, 200_000)
        args.quiet_events = min(args.quiet_events, 2_000)
    print(f"# api_latency --busy-org on {machine()}")
    with World("busy-org") as world:
        print(world.describe())
        print(world.start_pg())
        lo, hi, summary = publish(world.settings, args)
        print(
            f"published {summary.sent:,} messages ({len(summary.events or []):,} distinct "
            f"events, {summary.duplicates:,} retries) over {YEARS} years in "
            f"{summary.elapsed_s:.1f}s: "
            + ", ".join(f"{org} {n:,}" for org, n in sorted(summary.valid.items()))
        )

        def copy(events: list[tuple[str, int]]) -> None:
            print(f"PostgreSQL: {world.copy_to_pg(events):,} rows copied, indexed, vacuumed")

        oracle = world.project(summary, copy)
        pg_settings = replace(world.settings, port=free_port())
        world.procs.append(start_pg_service(pg_settings, world.pg.conninfo))
        measure(args, world, pg_settings.port, oracle, (lo, hi))


def measure(
    args: argparse.Namespace,
    world: World,
    pg_port: int,
    oracle: ExactCounts,
    bounds: tuple[int, int],
) -> None:
    """The measurements on running services; every count checked; prints the report."""
    rng, (lo, hi), api_port = random.Random(args.seed), bounds, world.settings.port
    store, pg = world.store, world.pg
    pids = {"API": world.api.pid, "PG service": world.procs[2].pid, "PostgreSQL": pg.pid or 0}
    pids["Redis"] = int(world.client.info("server")["process_id"])
    pids["load client (wrk, or this process)"] = -1
    queries = busy_queries(rng, lo, hi, args.requests)
    want = [oracle.count(q.org, q.start, q.end) for q in queries]
    warm = busy_queries(rng, lo, hi, 20)
    other: dict[str, float] = {}

    def phase(label: str, call: Callable[[Query], int], once: bool) -> list[tuple[float, int]]:
        timed(warm, call)
        # A POST phase runs once: a rerun of the same ranges would answer 200, not 201.
        flags = argparse.Namespace(**{**vars(args), "attempts": 1}) if once else args
        out, meter = quietly(label, lambda: timed(queries, call), pids, flags)
        other[label] = meter.other
        check(label, queries, [c for _, c in out], want)
        return out

    api_http, pg_http = HttpClient(api_port), HttpClient(pg_port)
    api = phase("our API", api_call(api_http), True)
    pgs = phase("PG service", api_call(pg_http), True)
    api_http.close()
    pg_http.close()
    direct = phase(
        "Redis count", lambda q: store.count_and_caught_up(q.org, q.start, q.end)[0], False
    )
    with pg.connect() as conn:
        for org in (BUSY_ORG, *QUIET_ORGS):  # read each org's whole index once: a warm cache
            conn.execute("SELECT COUNT(*) FROM records WHERE org_id = %s", (org,))
        sql = phase("bare SQL", pg_call(conn), False)
    print(f"all {len(queries):,} ranges: API == PG service == Redis == SQL == oracle")
    loads = {
        name: load_run(port, pids, oracle, lo, hi, args)
        for name, port in (("our API", api_port), ("PG service", pg_port))
    }
    report(args, queries, want, {"API": api, "PGS": pgs, "Redis": direct, "SQL": sql}, loads)
    print(
        "\nother work (% of one core) per phase:",
        ", ".join(f"{k} {v:.0f}" for k, v in other.items()),
    )


def load_run(
    port: int,
    pids: dict[str, int],
    oracle: ExactCounts,
    lo: int,
    hi: int,
    args: argparse.Namespace,
) -> Load:
    """wrk (or, with `--load-client python`, the gevent client) at `--clients` connections on
    fresh 1-year ranges (after a warm-up); checked."""
    span = [s for s in SPANS if s[0] == LOAD_SPAN]
    seeds = iter(range(args.seed + 30_000, 10**12, 100))  # the same ranges for each service

    def run_wrk(seconds: float) -> Load:
        size, seed = pool_size(seconds, args.clients), next(seeds)
        pools = [
            busy_queries(random.Random(seed + i), lo, hi, size, span) for i in range(args.clients)
        ]
        if args.load_client == "wrk":
            return wrk_throughput(port, pools, seconds, args.wrk_threads)
        return python_throughput(port, pools, seconds)

    label, checked_as = f"throughput on port {port}", f"under load on port {port}"
    load, _ = checked_load(label, run_wrk, oracle, pids, args, checked_as)
    return load


def report(
    args: argparse.Namespace,
    queries: list[Query],
    want: list[int],
    runs: dict[str, list[tuple[float, int]]],
    loads: dict[str, Load],
) -> None:
    """The latency and throughput tables and one PASS/MISS row per target."""
    rows: list[list[object]] = []
    p50_ratio: dict[str, float] = {}
    worst = (0.0, "")
    for name, _ in SPANS:
        idx = [i for i, q in enumerate(queries) if q.span == name]
        t = {k: [v[i][0] for i in idx] for k, v in runs.items()}
        ratio = pct(t["PGS"], 50) / pct(t["API"], 50)
        p50_ratio[name] = ratio
        worst = max(worst, (ms(t["API"], 99), name))
        busy = [want[i] for i in idx if queries[i].org == BUSY_ORG]
        rows.append(
            [name, f"{sum(busy) / max(1, len(busy)):,.0f}"]
            + [f"{ms(t[k], q):.2f}" for k in ("API", "PGS") for q in (50, 99)]
            + [f"{ms(t['Redis'], 50):.2f}", f"{ms(t['SQL'], 50):.2f}", f"{ratio:.1f}x"]
        )
    headers = ["span", "mean busy-org count", "API p50", "API p99", "PG service p50"]
    headers += ["PG service p99", "Redis count p50", "bare SQL p50", "PG service/API p50"]
    print(
        f"\nLatency at concurrency 1, {args.requests} ranges per span, "
        f"{BUSY_SHARE:.0%} on {BUSY_ORG} (ms):\n"
    )
    print(table(headers, rows))
    print(
        f"\nThroughput, {args.load_client} {args.clients} connections, {LOAD_SPAN} ranges, "
        f"{args.seconds:g} s:\n"
    )
    load_rows = [
        [k, f"{v.rate:,.0f}", f"{len(v.answered):,}", f"{1000 * v.p50:.2f}"]
        for k, v in loads.items()
    ]
    print(table(["service", "req/s", "requests", "p50 ms"], load_rows))
    pg_rate = loads["PG service"].rate
    rps = loads["our API"].rate / pg_rate if pg_rate else float("inf")
    year, five, (p99, at) = p50_ratio["1 year"], p50_ratio["5 years"], worst
    targets = [
        (
            f"API p99 <= {TARGET_P99_MS:g} ms at every span",
            f"worst {p99:.2f} ms ({at})",
            p99 <= TARGET_P99_MS,
        ),
        (f">= {TARGET_YEAR:g}x the PG service's p50, 1 year", f"{year:.1f}x", year >= TARGET_YEAR),
        (f">= {TARGET_5Y:g}x the PG service's p50, 5 years", f"{five:.1f}x", five >= TARGET_5Y),
        (f">= {TARGET_RPS:g}x the PG service's req/s, 1 year", f"{rps:.1f}x", rps >= TARGET_RPS),
    ]
    print("\n" + verdicts(targets))
