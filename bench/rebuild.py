"""Rebuild speed with the live load off and on, and read latency during a rebuild against without.

    .venv/bin/python -m bench.rebuild [--events 1000000] [--orgs 200] [--rate 1000]
                                      [--clients 4] [--seconds 15] [--max-rate 0]

Publishes `--events` events (1 % producer retries, `--orgs` orgs over a year) with
`events.produce`; two live projectors (`python -m projector`) project them and the API
(`python -m api`, 2 gevent workers) serves them. Then, in the same run over the same topic:

- bare: a kafka-python consumer that only reads every record (the ceiling; the baseline of
  docs/benchmarks.md);
- fresh: one `python -m projector` from an empty key prefix to caught up: what rebuilding
  meant before (stop everything, start over on an empty Redis, wrong answers meanwhile);
- rebuild, quiet: `python -m projector rebuild` with nothing else going on, from its start
  to the switch;
- reads without a rebuild: `--clients` processes POST random ranges (1 s to 10 years) for
  `--seconds` while a feeder publishes `--rate` events/s: the live load;
- rebuild, loaded: the same live load on during a second rebuild; its rate, and the reads'
  latency while it runs.

Every count answered under load is checked: it must be at least what the pre-published
events put in that range, and at most that plus what the feeder published. The POST clients
are started once and run through both read phases (latencies are taken from the requests
made wholly inside each phase). `--max-rate` applies the rebuild's own limit to the loaded
run. The rebuild
rate is the records the topic held when it started over the time to its request that live
projectors move (reading the topic); the time to the switch adds the move and the switch.
Prints one table and the ratios; note the machine's load (2 shared cores) beside them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from bench.api_latency import Oracle
from bench.common import bench_settings, cleanup, machine, table
from bench.projector_throughput import bare_read, projector_run
from config import Settings
from events.produce import Plan, produce
from events.redis_client import connect
from events.schema import format_utc
from events.topics import end_offsets
from projector.registry import GenerationRegistry
from scripts.harness import Proc, child_env, free_port, start_api, start_projector, wait_until
from tests.integration.drills import Feeder
from tests.integration.rebuilds import store_of

DAY = 86_400
PATH = "/api/v1/period-record-counts"
SPANS = (1, DAY, 90 * DAY, 365 * DAY, 3652 * DAY)


@dataclass(frozen=True)
class Timed:
    """One rebuild run: seconds reading the topic, to the switch, and its records."""

    records: int
    reading: float
    to_switch: float

    @property
    def rate(self) -> float:
        """Records read a second until the move."""
        return self.records / self.reading


def rebuild_once(settings: Settings, generation: int, *extra: str) -> Timed:
    """`python -m projector rebuild` to its end; timed from its own progress lines."""
    client = connect(settings)
    registry = GenerationRegistry(client, settings.redis_key_prefix, settings.dedup_window_seconds)
    records = sum(end_offsets(settings, settings.record_events_topic).values())
    argv = [sys.executable, "-m", "projector", "rebuild", "--progress-every", "1", *extra]
    env = child_env(settings, LOG_LEVEL="WARNING")
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    moved = switched = None
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.perf_counter()
        if "asking live projectors to move" in line and moved is None:
            moved = now
        if line.startswith("switched:"):
            switched = now
    if proc.wait() != 0 or moved is None or switched is None:
        raise SystemExit(f"rebuild failed (exit {proc.returncode})")
    assert registry.read().live.number == generation
    client.close()
    return Timed(records, moved - started, switched - started)


def _reader(
    port: int, stop: Any, results: Any, seed: int, orgs: list[str], lo: int, hi: int
) -> None:
    """One client process: POSTs until `stop` is set, then puts [(started, seconds, answer)]
    on `results`."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    while not stop.is_set():
        org = rng.choice(orgs)
        span = rng.choice(SPANS)
        start = max(0, rng.randrange(lo - span, hi))
        end = start + span - 1
        body = json.dumps(
            {"org_id": org, "range": {"start": format_utc(start), "end": format_utc(end)}}
        )
        began, wall = time.perf_counter(), time.time()
        conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        seconds = time.perf_counter() - began
        if response.status not in (200, 201):
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        out.append((wall, seconds, (org, start, end, int(json.loads(data)["record_count"]))))
    conn.close()
    results.put(out)


class ReadLoad:
    """`clients` processes POSTing random ranges until stopped (started once: a process
    start costs more CPU than seconds of requests, so they are not restarted per phase)."""

    def __init__(self, port: int, clients: int, plan: Plan) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._results = ctx.Queue()
        lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
        self._procs = [
            ctx.Process(
                target=_reader,
                args=(port, self._stop, self._results, 100 + n, list(plan.orgs), lo, hi),
                daemon=True,
            )
            for n in range(clients)
        ]
        for proc in self._procs:
            proc.start()

    def stop(self) -> list[Any]:
        """Every request made: (wall-clock start, seconds, answer)."""
        self._stop.set()
        results = [x for _ in self._procs for x in self._results.get(timeout=120)]
        for proc in self._procs:
            proc.join(timeout=30)
        return results


def window(requests: list[Any], start: float, end: float) -> tuple[list[float], list[Any]]:
    """Latencies and answers of the requests made wholly within [start, end] (wall clock)."""
    inside = [r for r in requests if start <= r[0] and r[0] + r[1] <= end]
    return [r[1] for r in inside], [r[2] for r in inside]


def check(answers: list[Any], ranges: Oracle, extra: int) -> None:
    """Each answer is at least the pre-published count, at most that plus the feed's events."""
    for org, start, end, count in answers:
        floor = ranges.count(org, start, end)
        if not floor <= count <= floor + extra:
            raise SystemExit(f"wrong count {count} for {org} {start}..{end} (floor {floor})")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000


def used_memory(settings: Settings) -> int:
    client = connect(settings)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def run(args: argparse.Namespace) -> None:
    settings = replace(bench_settings("rebuild"), port=free_port(), rebuild_metrics_port=0)
    procs: list[Proc] = []
    now_ms = int(time.time() * 1000)
    # Pre-published events over the year ending a day ago; the feed writes today's.
    plan = Plan(
        orgs=tuple(f"org-{i}" for i in range(args.orgs)),
        count=args.events,
        start_ms=now_ms - 366 * DAY * 1000,
        end_ms=now_ms - DAY * 1000,
        duplicate_ratio=0.01,
        seed=7,
    )
    live_plan = replace(plan, count=10**8, start_ms=now_ms - DAY * 1000 + 1, end_ms=now_ms, seed=8)
    try:
        memory_zero = used_memory(settings)
        sent = produce(plan, settings, settings.record_events_topic, workers=2, keep_events=True)
        ranges = Oracle(sent.events or [])
        total = sum(end_offsets(settings, settings.record_events_topic).values())
        print(f"published {sent.sent:,} events ({sum(sent.valid.values()):,} distinct)")
        bare = bare_read(settings, total)
        fresh = projector_run(settings, end_offsets(settings, settings.record_events_topic), 1)
        print(f"bare read {total / bare:,.0f}/s; fresh projector {total / fresh.seconds:,.0f}/s")

        client = connect(settings)
        for n in (1, 2):
            procs.append(start_projector(settings, PROJECTOR_INSTANCE_ID=f"live-{n}"))
        live_store = store_of(settings, client, 1)
        wait_until(
            lambda: sum(live_store.positions().values()) >= total, 600, "live projectors caught up"
        )
        procs.append(start_api(settings, WEB_CONCURRENCY="2", LOG_LEVEL="WARNING"))
        memory_one = used_memory(settings)

        quiet = rebuild_once(settings, 2)
        memory_after = used_memory(settings)
        print(f"rebuild, quiet: {quiet.rate:,.0f}/s reading, {quiet.to_switch:.1f}s to switch")

        feeder = Feeder(settings, live_plan, rate=args.rate, process=True)
        feeder.start()
        load = ReadLoad(settings.port, args.clients, plan)
        time.sleep(3)  # every client connected and going
        began = time.time()
        time.sleep(args.seconds)
        quiet_end = time.time()
        peak = [0]
        rebuilt: list[Timed] = []
        spans: list[float] = []

        def watch_memory() -> None:
            while not rebuilt:
                peak[0] = max(peak[0], used_memory(settings))
                time.sleep(0.5)

        threading.Thread(target=watch_memory, daemon=True).start()
        spans.append(time.time())
        limit = ["--max-rate", str(args.max_rate)] if args.max_rate else []
        rebuilt.append(rebuild_once(settings, 3, *limit))
        spans.append(time.time())
        requests = load.stop()
        feeder.stop()
        extra = feeder.finish().sent
        without, answers = window(requests, began, quiet_end)
        check(answers, ranges, extra)
        during, answers = window(requests, spans[0] + 1.0, spans[1])  # the process is up
        check(answers, ranges, extra)
        loaded = rebuilt
        report(args, total, bare, fresh.seconds, quiet, loaded[0], without, during)
        mib = [(m - memory_zero) / 2**20 for m in (memory_one, peak[0], memory_after)]
        print(
            f"memory: {mib[0]:,.1f} MiB with one generation, peak {mib[1]:,.1f} MiB during a "
            f"rebuild, {mib[2]:,.1f} MiB after the quiet one (INFO used_memory over what Redis "
            "held before the bench; snapshots included)"
        )
        client.close()
    finally:
        for proc in reversed(procs):
            proc.stop()
        cleanup(settings)


def report(
    args: argparse.Namespace,
    total: int,
    bare: float,
    fresh: float,
    quiet: Timed,
    loaded: Timed,
    without: list[float],
    during: list[float],
) -> None:
    rows = [
        ["bare kafka-python consumer (read only)", f"{total / bare:,.0f}", f"{bare:.1f}", "-"],
        [
            "fresh projector, empty Redis (the old way)",
            f"{total / fresh:,.0f}",
            f"{fresh:.1f}",
            "-",
        ],
        [
            "rebuild, no live load",
            f"{quiet.rate:,.0f}",
            f"{quiet.reading:.1f}",
            f"{quiet.to_switch:.1f}",
        ],
        [
            f"rebuild, live load ({args.rate:,} events/s in, {args.clients} POST clients"
            + (f", --max-rate {args.max_rate:,.0f})" if args.max_rate else ")"),
            f"{loaded.rate:,.0f}",
            f"{loaded.reading:.1f}",
            f"{loaded.to_switch:.1f}",
        ],
    ]
    print(f"\n{total:,} records in the topic; load average {os.getloadavg()[0]:.2f}")
    print(table(["reader", "records/s", "seconds reading", "seconds to switch"], rows))
    print(
        f"ratios: rebuild quiet / fresh projector {quiet.rate * fresh / total:.2f}, "
        f"/ bare {quiet.rate * bare / total:.2f}; loaded / quiet {loaded.rate / quiet.rate:.2f}"
    )
    lat_rows = [
        [
            "live load, no rebuild",
            len(without),
            f"{pct(without, 50):.2f}",
            f"{pct(without, 99):.2f}",
        ],
        [
            "live load, during a rebuild",
            len(during),
            f"{pct(during, 50):.2f}",
            f"{pct(during, 99):.2f}",
        ],
    ]
    print(table(["POST latency", "requests", "p50 ms", "p99 ms"], lat_rows))
    print(f"p99 during / without: {pct(during, 99) / pct(without, 99):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--rate", type=int, default=1_000, help="live events/s under load")
    parser.add_argument("--clients", type=int, default=4, help="POST client processes")
    parser.add_argument("--seconds", type=float, default=15.0, help="reads without a rebuild")
    parser.add_argument(
        "--max-rate", type=float, default=0, help="the loaded rebuild's --max-rate (0: none)"
    )
    args = parser.parse_args()
    print(f"# bench.rebuild on {machine()}; load average {os.getloadavg()[0]:.2f}")
    run(args)


if __name__ == "__main__":
    main()
