"""`bench/api_latency.py --redis-cluster`: the API's latency and throughput on a private
single Redis and a private 3-master Redis Cluster, side by side in one run.

One topic is published once; for each target a projector fills that target's Redis, every
org's total is checked, then the API (gunicorn, the same worker settings as api_latency) is
started against it. Sequential POST latency and the loaded throughput (`load_run`: wrk) are
measured, every count checked against the same oracle, with CPU per request per Redis node.
PostgreSQL is not part of this comparison (it does not depend on the Redis deployment).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace

from bench.api_latency import load_run
from bench.common import bench_settings, cleanup, machine, table
from bench.http_client import HttpClient
from bench.ranges import api_call, check, make_queries
from bench.redis_targets import Target, targets
from bench.stats import ms, timed
from bench.world import DATA_YEARS, check_totals, publish, wait_caught_up
from config import Settings
from events.produce import Plan
from events.redis_client import connect
from events.topics import end_offsets
from projector.store import CounterStore
from scripts.harness import child_pids, free_port, start_api, start_projector
from tests.support.oracles import ExactCounts


def one_target(
    target: Target,
    base: Settings,
    ends: dict[int, int],
    valid: dict[str, int],
    oracle: ExactCounts,
    plan: Plan,
    args: argparse.Namespace,
) -> list[object]:
    """Project into `target`, check totals, start the API on it and measure; one table row."""
    settings = replace(target.settings(base), port=free_port())
    target.ping(settings)
    client = connect(settings)
    store = CounterStore(client, settings.redis_key_prefix, settings.record_events_topic)
    procs = [start_projector(settings)]
    try:
        wait_caught_up(store, ends)
        check_totals(store, valid, f" on {target.name}")
        procs.append(start_api(settings))
        pids = {f"API worker {i + 1}": p for i, p in enumerate(child_pids(procs[-1].pid))}
        pids.update(target.pids)
        pids["load client (wrk, or this process)"] = -1
        rng = random.Random(args.seed)
        lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
        http = HttpClient(settings.port)
        timed(make_queries(rng, plan.orgs, lo, hi, 20), api_call(http))
        qs = make_queries(rng, plan.orgs, lo, hi, args.requests)
        out = timed(qs, api_call(http))
        http.close()
        check(
            f"API on {target.name}",
            qs,
            [c for _, c in out],
            [oracle.count(q.org, q.start, q.end) for q in qs],
        )
        latencies = [t for t, _ in out]
        load, percent = load_run(settings.port, pids, oracle, plan, args)
        per_node = " / ".join(
            f"{node} {percent[node] / 100 / load.rate * 1e6:.0f}" for node in sorted(target.pids)
        )
        redis_us = sum(percent[n] for n in target.pids) / 100 / load.rate * 1e6
        return [
            target.name,
            f"{ms(latencies, 50):.2f}",
            f"{ms(latencies, 99):.2f}",
            f"{load.rate:,.0f}",
            f"{load.p50 * 1000:.1f}",
            f"{load.p99 * 1000:.1f}",
            f"{redis_us:.0f}",
            per_node,
        ]
    finally:
        for proc in reversed(procs):
            proc.stop()
        client.close()


def run(args: argparse.Namespace) -> None:
    """Publish once, measure on both targets, print the side-by-side table with ratios."""
    print(f"# api_latency --redis-cluster on {machine()}")
    base = bench_settings("api-cluster")
    base = replace(base, log_level="WARNING", web_concurrency=2)
    try:
        plan, summary = publish(base, args.events, args.orgs, args.seed)
        print(
            f"published {summary.sent:,} messages for {len(plan.orgs)} orgs over {DATA_YEARS} years"
        )
        ends = end_offsets(base, base.record_events_topic)
        oracle = ExactCounts(summary.events or [])
        summary.events = []
        with targets() as found:
            rows = [one_target(t, base, ends, summary.valid, oracle, plan, args) for t in found]
        ratio = (
            ["cluster / single"]
            + [
                f"{float(str(c).replace(',', '')) / float(str(s).replace(',', '')):.2f}"
                for s, c in zip(rows[0][1:7], rows[1][1:7], strict=True)
            ]
            + ["-"]
        )
        headers = ["Redis", "POST p50 ms", "POST p99 ms", "loaded req/s", "loaded p50 ms"]
        headers += ["loaded p99 ms", "Redis CPU us/request", "per node us/request"]
        print(f"all ranges on both: API count == oracle ({args.requests} sequential + load)")
        print(table(headers, [*rows, ratio]))
    finally:
        cleanup(base)
