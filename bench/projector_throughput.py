"""Projector throughput against a bare consumer, and Redis memory per event.

    .venv/bin/python -m bench.projector_throughput [--events 1000000] [--members 1,2,3]
        [--memory-orgs 1000]

Part 1 pre-publishes `--events` events (5 % duplicates, 200 orgs, `--span-days`: a year) with
`events.produce`, then, over the same topic, times (a) a bare kafka-python consumer that
only reads every record and (b) the real projector (`python -m projector`) from empty Redis
to caught up. Both read with the same fetch settings; the ratio is projector / bare. With
`--members 1,2,3` the projector run is repeated with that many processes in one consumer
group (each run on fresh Redis keys and a fresh group), printing the CPU each member and
Redis spent per event: on 2 cores more members cannot be faster, but CPU per event shows
what they would cost on a machine with room for them.

`--density-sweep` replaces part 2 with the same measure at 10, 100, 1,000, 10,000, 100,000
and 250,000 events per org per day (~600,000 events a step), beside a sorted set per org
(ZADD of the same events: the baseline of /work/shared/notes/baselines.md).

Part 2 applies 1,000 orgs x 30 days x 100 events/org/day straight through the projector's
store (the same Lua and key layout; Kafka would only add time) and reports Redis memory
(`INFO memory`, and `MEMORY USAGE` summed per key kind) per event, counters and dedup apart.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass, replace

from kafka import KafkaConsumer, TopicPartition

from bench.common import bench_settings, cleanup, cleanup_prefix, machine, table
from bench.cpu import cpu_seconds
from bench.redis_memory import density_sweep, memory
from bench.redis_targets import Target, targets
from bench.world import wait_caught_up
from config import Settings
from events.connections import kafka_config
from events.produce import Plan, produce
from events.redis_client import connect
from events.topics import end_offsets
from projector.store import CounterStore
from scripts.harness import start_projector

DAY = 86400


def bare_read(settings: Settings, total: int) -> float:
    """Seconds for a consumer that does nothing but read every record."""
    consumer = KafkaConsumer(
        **kafka_config(settings),
        enable_auto_commit=False,
        max_poll_records=settings.projector_max_batch,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=100,
    )
    parts = consumer.partitions_for_topic(settings.record_events_topic) or set()
    consumer.assign([TopicPartition(settings.record_events_topic, p) for p in parts])
    consumer.seek_to_beginning()
    seen = 0
    started = time.perf_counter()
    while seen < total:
        for records in consumer.poll(timeout_ms=500).values():
            seen += len(records)
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def projector_run(
    settings: Settings, ends: dict[int, int], members: int, redis_pids: dict[str, int] | None = None
) -> Run:
    """`members` x `python -m projector` in one group, from start to Redis positions at the
    log ends; with the CPU each process and each Redis node (`redis_pids`, by name; default:
    the one server `settings` points at) used meanwhile."""
    tag = f"m{members}-{uuid.uuid4().hex[:6]}"
    settings = replace(
        settings,
        redis_key_prefix=f"{settings.redis_key_prefix}-{tag}",
        projector_group_id=f"{settings.projector_group_id}-{tag}",
    )
    client = connect(settings)
    store = CounterStore(client, settings.redis_key_prefix, settings.record_events_topic)
    if redis_pids is None:
        redis_pids = {"redis": int(client.info("server")["process_id"])}
    redis_before = {node: cpu_seconds(pid) for node, pid in redis_pids.items()}
    started = time.perf_counter()
    procs = [start_projector(settings, PROJECTOR_INSTANCE_ID=f"{tag}-{n}") for n in range(members)]
    try:
        wait_caught_up(store, ends, 1800, interval=0.05)
        elapsed = time.perf_counter() - started
        cpu = [cpu_seconds(proc.pid) for proc in procs]
        redis_cpu = {n: cpu_seconds(pid) - redis_before[n] for n, pid in redis_pids.items()}
    finally:
        for proc in procs:
            proc.stop()
        client.close()
        cleanup_prefix(settings)
    return Run(members, elapsed, cpu, redis_cpu)


@dataclass(frozen=True)
class Run:
    """One projector run: members, wall seconds, CPU seconds per member and per Redis node."""

    members: int
    seconds: float
    cpu: list[float]
    redis_cpu: dict[str, float]


def publish(settings: Settings, events: int, span_days: float) -> tuple[int, dict[int, int]]:
    """Pre-publish the bench's events (5 % duplicates, 200 orgs); the log ends and their sum."""
    now_ms = int(time.time() * 1000)
    plan = Plan(
        orgs=tuple(f"org-{i}" for i in range(200)),
        count=events,
        start_ms=now_ms - int(span_days * DAY * 1000),
        end_ms=now_ms,
        duplicate_ratio=0.05,
        seed=1,
    )
    sent = produce(plan, settings, settings.record_events_topic, workers=2)
    ends = end_offsets(settings, settings.record_events_topic)
    total = sum(ends.values())
    print(
        f"published {sent.sent:,} events in {sent.elapsed_s:.1f}s "
        f"({sent.sent / sent.elapsed_s:,.0f}/s); log ends total {total:,}"
    )
    return total, ends


def throughput(events: int, span_days: float, members: list[int]) -> None:
    """Part 1: projector(s) vs bare consumer over the same pre-published topic."""
    settings = bench_settings("throughput")
    try:
        total, ends = publish(settings, events, span_days)
        bare = bare_read(settings, total)
        rows = [["bare kafka-python consumer (read only)", f"{bare:.1f}", f"{total / bare:,.0f}"]]
        rows[0] += ["1.00", "-", "-", "-"]
        for n in members:
            run = projector_run(settings, ends, n)
            per_process = " / ".join(f"{c / total * 1e6:.1f}" for c in run.cpu)
            rows.append(
                [
                    f"projector, {n} member{'s' if n > 1 else ''}",
                    f"{run.seconds:.1f}",
                    f"{total / run.seconds:,.0f}",
                    f"{bare / run.seconds:.2f}",
                    per_process,
                    f"{sum(run.cpu) / total * 1e6:.1f}",
                    f"{sum(run.redis_cpu.values()) / total * 1e6:.1f}",
                ]
            )
        headers = ["reader", "seconds", "events/s", "ratio to bare"]
        headers += ["CPU us/event per member", "all members", "Redis"]
        print(table(headers, rows))
    finally:
        cleanup(settings)


def cluster_side_by_side(events: int, span_days: float, members: int) -> None:
    """`--redis-cluster`: the same projector run on a private single Redis and a private
    3-master cluster, over one pre-published topic, in one run; ratios cluster/single and
    CPU per event per Redis node."""
    settings = bench_settings("throughput-cluster")
    try:
        total, ends = publish(settings, events, span_days)
        with targets() as found:
            runs: list[tuple[Target, Run]] = []
            for target in found:
                target.ping(settings)
                runs.append(
                    (target, projector_run(target.settings(settings), ends, members, target.pids))
                )
        single = runs[0][1]
        rows = []
        for target, run in runs:
            redis_total = sum(run.redis_cpu.values())
            per_node = " / ".join(
                f"{node} {cpu / total * 1e6:.1f}" for node, cpu in sorted(run.redis_cpu.items())
            )
            rows.append(
                [
                    target.name,
                    f"{run.seconds:.1f}",
                    f"{total / run.seconds:,.0f}",
                    f"{single.seconds / run.seconds:.2f}",
                    f"{sum(run.cpu) / total * 1e6:.1f}",
                    f"{redis_total / total * 1e6:.1f}",
                    f"{redis_total / max(sum(single.redis_cpu.values()), 1e-9):.2f}",
                    per_node,
                ]
            )
        headers = ["Redis", "seconds", "events/s", "throughput cluster/single"]
        headers += ["projector CPU us/event", "Redis CPU us/event (all nodes)"]
        headers += ["Redis CPU cluster/single", "Redis CPU us/event per node"]
        print(f"{total:,} events, {members} projector member(s)")
        print(table(headers, rows))
    finally:
        cleanup(settings)


def main() -> None:
    """Run both parts and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--span-days",
        type=float,
        default=365,
        help="event times spread uniformly over this many days before now (default: a year)",
    )
    parser.add_argument(
        "--members",
        default="1",
        help="comma-separated projector group sizes to time, one after another (e.g. 1,2,3)",
    )
    parser.add_argument("--memory-orgs", type=int, default=1000)
    parser.add_argument("--memory-days", type=int, default=30)
    parser.add_argument("--memory-per-day", type=int, default=100)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="time the projector on a private single Redis and a private 3-master cluster "
        "side by side (first --members size), instead of parts 1 and 2",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 events")
    parser.add_argument(
        "--density-sweep",
        action="store_true",
        help="memory per event at 10 .. 250,000 events/org/day instead of part 2's one density",
    )
    args = parser.parse_args()
    if args.quick:
        args.events = min(args.events, 20_000)
        args.memory_orgs, args.memory_days, args.memory_per_day = 20, 5, 20
    print(f"# projector_throughput on {machine()}")
    if args.redis_cluster:
        cluster_side_by_side(args.events, args.span_days, int(args.members.split(",")[0]))
        return
    if not args.skip_throughput:
        throughput(args.events, args.span_days, [int(n) for n in args.members.split(",")])
    if args.density_sweep:
        density_sweep()
    elif not args.skip_memory:
        memory(args.memory_orgs, args.memory_days, args.memory_per_day)


if __name__ == "__main__":
    main()
