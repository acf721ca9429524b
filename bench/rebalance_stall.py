"""How long membership changes stop partitions of the projector group, per assignor.

    .venv/bin/python -m bench.rebalance_stall [--rate 2000] [--assignors range,cooperative-sticky]
                                              [--window 20] [--quick]

For each assignor (PROJECTOR_ASSIGNOR), on a fresh group and fresh Redis keys: 3 projectors
share 6 partitions while events arrive at `--rate` a second. Then a 4th member joins, and
later leaves (SIGTERM; a static member leaves when its session times out, 10 s). Redis's
partition positions are sampled every 20 ms; a partition's stall is the longest time its
position stood still in the window after a change, while its events kept arriving. Prints per
change how many partitions stalled over 1 s, their longest stall, and the quiet-time baseline.
`--window` is the time measured after each change (20 s; a static member's leave takes its
10 s session timeout); `--quick`, a smoke run: 200 events/s and 5 s windows.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import replace

from bench.common import bench_settings, cleanup, cleanup_prefix, machine, table
from config import Settings
from events.produce import Plan, generate
from events.publisher import Publisher
from events.redis_client import connect
from projector.store import CounterStore
from scripts.harness import Proc, start_projector, wait_until

PARTITIONS = 6
WINDOW = 20.0  # seconds after a change in which stalls are measured
SAMPLE = 0.02


class Feed(threading.Thread):
    """Publishes events at a steady rate until stopped."""

    def __init__(self, settings: Settings, rate: int) -> None:
        super().__init__(daemon=True)
        self.settings, self.rate = settings, rate
        self.halt = threading.Event()

    def run(self) -> None:
        now_ms = int(time.time() * 1000)
        plan = Plan(tuple(f"org-{i}" for i in range(60)), 10**8, now_ms - 86_400_000, now_ms)
        messages = generate(plan)
        tick = 0.05
        with Publisher(self.settings, self.settings.record_events_topic) as out:
            next_tick = time.monotonic()
            while not self.halt.is_set():
                for _ in range(int(self.rate * tick)):
                    key, value, _ = next(messages)
                    out.publish_raw(key, value)
                out.flush()
                next_tick += tick
                time.sleep(max(0.0, next_tick - time.monotonic()))


class Sampler(threading.Thread):
    """Records (time, positions) every SAMPLE seconds."""

    def __init__(self, store: CounterStore) -> None:
        super().__init__(daemon=True)
        self.store, self.samples = store, []  # type: ignore[var-annotated]
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append((time.monotonic(), self.store.positions()))
            time.sleep(SAMPLE)

    def stalls(self, start: float, end: float) -> dict[int, float]:
        """Per partition, the longest time its position stood still within [start, end]."""
        longest: dict[int, float] = {}
        for p in range(PARTITIONS):
            last_value, last_change = None, start
            for at, positions in self.samples:
                if not start <= at <= end:
                    continue
                value = positions.get(p)
                if value != last_value:
                    if last_value is not None:
                        longest[p] = max(longest.get(p, 0.0), at - last_change)
                    last_value, last_change = value, at
            longest[p] = max(longest.get(p, 0.0), end - last_change)
        return longest


def run_assignor(settings: Settings, assignor: str, window: float = WINDOW) -> list[list[object]]:
    """The rows of one assignor: quiet baseline, join, leave (each over `window` seconds)."""
    tag = f"{assignor}-{int(time.time())}"
    settings = replace(
        settings,
        projector_assignor=assignor,
        redis_key_prefix=f"{settings.redis_key_prefix}-{tag}",
        projector_group_id=f"{settings.projector_group_id}-{tag}",
    )
    client = connect(settings)
    store = CounterStore(client, settings.redis_key_prefix, settings.record_events_topic)
    sampler = Sampler(store)
    procs: list[Proc] = []

    def member(n: int) -> Proc:
        procs.append(start_projector(settings, PROJECTOR_INSTANCE_ID=f"{tag}-{n}"))
        return procs[-1]

    try:
        for n in range(3):
            member(n)
        wait_until(lambda: len(store.positions()) == PARTITIONS, 60, "all partitions moving")
        sampler.start()
        time.sleep(window)
        quiet = sampler.stalls(time.monotonic() - window, time.monotonic())
        joined_at = time.monotonic()
        fourth = member(3)
        time.sleep(window)
        joined = sampler.stalls(joined_at, time.monotonic())
        left_at = time.monotonic()
        fourth.stop()
        time.sleep(window)
        left = sampler.stalls(left_at, time.monotonic())
    finally:
        sampler.halt.set()
        for proc in procs:
            proc.stop()
        client.close()
        cleanup_prefix(settings)
    rows = []
    for label, stalls in (("no change (baseline)", quiet), ("a 4th joins", joined)):
        rows.append(_row(assignor, label, stalls))
    rows.append(_row(assignor, "the 4th leaves (SIGTERM, static)", left))
    return rows


def _row(assignor: str, label: str, stalls: dict[int, float]) -> list[object]:
    over = sorted(p for p, s in stalls.items() if s > 1.0)
    return [assignor, label, f"{len(over)} of {PARTITIONS}", f"{max(stalls.values()):.2f}"]


def main() -> None:
    """Measure each assignor in turn on one topic and feed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--assignors", default="range,cooperative-sticky")
    parser.add_argument(
        "--window", type=float, default=WINDOW, help="seconds measured after each change"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 events/s, 5 s")
    args = parser.parse_args()
    if args.quick:  # at most these: a smoke test may ask for less
        args.rate, args.window = min(args.rate, 200), min(args.window, 5.0)
    print(f"# rebalance_stall on {machine()}, {args.rate} events/s")
    settings = bench_settings("rebalance", partitions=PARTITIONS)
    feed = Feed(settings, args.rate)
    feed.start()
    try:
        names = args.assignors.split(",")
        rows = [row for name in names for row in run_assignor(settings, name, args.window)]
    finally:
        feed.halt.set()
        feed.join(30)
        cleanup(settings)
    headers = ["assignor", "change", "partitions stalled > 1 s", "longest stall (s)"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
