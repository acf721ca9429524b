"""Rebuild speed with the live load off and on, and read latency during a rebuild against without.

    .venv/bin/python -m bench.rebuild [--events 1000000] [--orgs 200] [--rate 1000]
                                      [--clients 4] [--seconds 15] [--max-rate 0] [--quick]

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
`--quick`: a smoke run (20,000 events, 20 orgs, 200 events/s, 2 POST clients, 3 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from bench.common import bench_settings, cleanup, machine, table
from bench.projector_throughput import bare_read, projector_run
from bench.read_load import ReadLoad, window
from bench.stats import ms
from config import Settings
from events.produce import Plan, produce
from events.redis_client import connect
from events.topics import end_offsets
from projector.registry import GenerationRegistry
from scripts.harness import Proc, child_env, free_port, start_api, start_projector, wait_until
from tests.integration.drills import Feeder
from tests.integration.rebuilds import store_of
from tests.support.oracles import ExactCounts

DAY = 86_400


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


def check(answers: list[Any], ranges: ExactCounts, extra: int) -> None:
    """Each answer is at least the pre-published count, at most that plus the feed's events."""
    for org, start, end, count in answers:
        floor = ranges.count(org, start, end)
        if not floor <= count <= floor + extra:
            raise SystemExit(f"wrong count {count} for {org} {start}..{end} (floor {floor})")


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
        ranges = ExactCounts(sent.events or [])
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
            f"{ms(without, 50):.2f}",
            f"{ms(without, 99):.2f}",
        ],
        [
            "live load, during a rebuild",
            len(during),
            f"{ms(during, 50):.2f}",
            f"{ms(during, 99):.2f}",
        ],
    ]
    print(table(["POST latency", "requests", "p50 ms", "p99 ms"], lat_rows))
    print(f"p99 during / without: {ms(during, 99) / ms(without, 99):.2f}")


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
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20,000 events, 2 clients, 3 s"
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.orgs, args.rate, args.clients, args.seconds = 20_000, 20, 200, 2, 3.0
    print(f"# bench.rebuild on {machine()}; load average {os.getloadavg()[0]:.2f}")
    run(args)


if __name__ == "__main__":
    main()
