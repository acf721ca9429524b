"""Part 2 of bench/projector_throughput.py: Redis bytes per event, counters and dedup apart,
for events applied straight through the projector's store (the same Lua and key layout as
the projector; Kafka would only add time), and `--density-sweep`: the same from a quiet org
(10 events a day) to a burst day (250,000), beside a sorted set per org (the baseline)."""

from __future__ import annotations

import random
import time
import uuid

from bench.common import bench_settings, cleanup, table
from events.redis_client import connect
from projector import keys
from projector.store import CounterStore, Increment

DAY = 86400


def memory(orgs: int, days: int, per_day: int, zset: bool = False) -> dict[str, float]:
    """Part 2: Redis bytes per event for counters and for the dedup window (and, with
    `zset`, for the sorted-set baseline on the same events); prints its table."""
    settings = bench_settings("memory")
    client = connect(settings)
    store = CounterStore(client, settings.redis_key_prefix, settings.record_events_topic)
    rng = random.Random(3)
    start = (int(time.time()) // DAY - days) * DAY
    zset_prefix = f"{settings.redis_key_prefix}:zset:"
    try:
        before = client.info("memory")["used_memory"]
        batch: list[Increment] = []
        offset = 0
        total = 0

        def flush() -> None:
            store.apply(batch, {})
            if zset:
                pipe = client.pipeline(transaction=False)
                for inc in batch:
                    pipe.zadd(f"{zset_prefix}{{{inc.org_id}}}", {inc.event_id: inc.second})
                pipe.execute()
            batch.clear()

        for day in range(days):
            for o in range(orgs):
                org = f"org-{o:04d}"
                for _ in range(per_day):
                    second = start + day * DAY + rng.randrange(DAY)
                    batch.append(Increment(org, uuid.uuid4().hex, second, o % 6, offset, second))
                    offset += 1
                    if len(batch) >= 5000:
                        total += len(batch)
                        flush()
        if batch:
            total += len(batch)
            flush()
        after = client.info("memory")["used_memory"]
        by_kind: dict[str, int] = {}
        encodings: dict[str, set[str]] = {}
        for key in client.scan_iter(match=f"{settings.redis_key_prefix}:*", count=5000):
            name = key.decode()
            kind = "zset" if name.startswith(zset_prefix) else keys.kind_of(name)
            by_kind[kind] = by_kind.get(kind, 0) + (client.memory_usage(key, samples=0) or 0)
            if kind in ("counters", "dedup"):
                encoding = client.object("encoding", key)
                encodings.setdefault(kind, set()).add(
                    encoding.decode() if isinstance(encoding, bytes) else str(encoding)
                )
        rows = [
            [kind, f"{size:,}", f"{size / total:.1f}", ",".join(sorted(encodings.get(kind, [])))]
            for kind, size in sorted(by_kind.items())
        ]
        rows.append(
            [
                "INFO used_memory delta (all)",
                f"{after - before:,}",
                f"{(after - before) / total:.1f}",
                "",
            ]
        )
        print(f"{orgs} orgs x {days} days x {per_day} events/org/day = {total:,} events")
        print(
            f"hash-max-listpack-entries = "
            f"{client.config_get('hash-max-listpack-entries')['hash-max-listpack-entries']}"
        )
        print(table(["key kind", "bytes", "bytes/event", "encodings"], rows))
        return {kind: size / total for kind, size in by_kind.items()}
    finally:
        client.close()
        cleanup(settings)


# Density sweep steps: events per org per day -> (orgs, days), ~600,000 events each.
SWEEP = {
    10: (2_000, 30),
    100: (200, 30),
    1_000: (20, 30),
    10_000: (2, 30),
    100_000: (1, 6),
    250_000: (1, 2),
}
COUNTER_TARGET, DEDUP_TARGET = 16.0, 24.0


def density_sweep() -> None:
    """Bytes per event, counters and dedup apart, from a quiet org to a burst day."""
    rows = []
    for per_day, (orgs, days) in SWEEP.items():
        got = memory(orgs, days, per_day, zset=True)
        counters, dedup = got.get("counters", 0.0), got.get("dedup", 0.0)
        rows.append(
            [
                f"{per_day:,}",
                f"{counters:.1f}",
                "ok" if counters <= COUNTER_TARGET else "OVER",
                f"{dedup:.1f}",
                "ok" if dedup <= DEDUP_TARGET else "OVER",
                f"{counters + dedup:.1f}",
                f"{got.get('zset', 0.0):.1f}",
                f"{got.get('zset', 0.0) / max(counters + dedup, 1e-9):.1f}",
            ]
        )
    print("density sweep (bytes/event; MEMORY USAGE per key kind)")
    headers = ["events/org/day", "counters", "<= 16", "dedup", "<= 24", "both"]
    headers += ["zset baseline", "zset / ours"]
    print(table(headers, rows))
