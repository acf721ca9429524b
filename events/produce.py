"""`python -m events.produce`: publish synthetic record events (demo, tests, benchmarks).

`generate` is pure and deterministic for a seed, and its `Summary` is an exact oracle: distinct
valid events per org, and optionally each one's (org_id, epoch second). A duplicate is a
producer retry: the same key and value again. Re-running with the same seed republishes the
same event_ids, which the projector counts once. Importing this module does not load the
Kafka client (only `produce` needs it), so oracles and unit tests can use `generate` alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from multiprocessing import get_context
from typing import TYPE_CHECKING

from config import ConfigError, Settings
from events.schema import EventError, format_utc, parse_instant, valid_org_id

if TYPE_CHECKING:
    from events.connections import KafkaTarget


class GeneratedKind(StrEnum):
    """What a generated message is; invalid kinds map to the codec error they provoke."""

    VALID = "valid"
    DUPLICATE = "duplicate"
    BAD_JSON = "bad_json"
    MISSING_FIELD = "missing_field"
    NAIVE_TIMESTAMP = "naive_timestamp"
    BAD_ORG_ID = "bad_org_id"
    OVERSIZED = "oversized"


# Each invalid kind, and the codec error code it provokes.
EXPECTED_ERROR = {
    GeneratedKind.BAD_JSON: "not_json",
    GeneratedKind.MISSING_FIELD: "missing_field",
    GeneratedKind.NAIVE_TIMESTAMP: "bad_occurred_at",
    GeneratedKind.BAD_ORG_ID: "bad_org_id",
    GeneratedKind.OVERSIZED: "value_too_large",
}
INVALID_KINDS = tuple(EXPECTED_ERROR)
_RING = 1024  # duplicates re-send one of the last _RING valid events, as a retry would
_TWO = [f"{i:02d}" for i in range(60)]
_THREE = [f"{i:03d}" for i in range(1000)]
_UNIX_DAY0 = date(1970, 1, 1)


@dataclass(frozen=True)
class Plan:
    """What to generate: `count` messages over [start_ms, end_ms] (epoch ms, inclusive)."""

    orgs: tuple[str, ...]
    count: int
    start_ms: int
    end_ms: int
    pattern: str = "uniform"
    duplicate_ratio: float = 0.0
    invalid_ratio: float = 0.0
    seed: int = 0
    shard: int = 0

    def __post_init__(self) -> None:
        if not self.orgs or not all(valid_org_id(o) for o in self.orgs):
            raise ValueError("orgs must be one or more valid org ids")
        if self.count < 0 or self.start_ms > self.end_ms or self.start_ms < 0:
            raise ValueError("need count >= 0 and 0 <= start <= end")
        if self.pattern not in ("uniform", "bursty"):
            raise ValueError(f"pattern must be uniform or bursty, got {self.pattern!r}")
        ratios = (self.duplicate_ratio, self.invalid_ratio)
        if not all(0 <= r < 1 for r in ratios) or sum(ratios) >= 1:
            raise ValueError("duplicate and invalid ratios must be in [0, 1) with a sum below 1")

    @property
    def quotas(self) -> tuple[int, int, int]:
        """Exact (valid, duplicate, invalid) message counts."""
        invalid = round(self.count * self.invalid_ratio)
        duplicate = round(self.count * self.duplicate_ratio)
        valid = self.count - invalid - duplicate
        if valid == 0 and duplicate:  # a retry needs an original
            valid, duplicate = 1, duplicate - 1
        return valid, duplicate, invalid

    def shards(self, n: int) -> list[Plan]:
        """Split into `n` independent plans of near-equal count (for parallel producers)."""
        base, extra = divmod(self.count, n)
        return [replace(self, count=base + (i < extra), shard=i) for i in range(n)]


@dataclass
class Summary:
    """What was generated/sent; `valid` counts distinct valid events per org."""

    valid: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    invalid: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    elapsed_s: float = 0.0
    events: list[tuple[str, int]] | None = None  # (org_id, epoch second), when asked for

    def merge(self, other: Summary) -> None:
        """Add `other`'s counts (and events) to this summary."""
        for org, n in other.valid.items():
            self.valid[org] = self.valid.get(org, 0) + n
        for kind, n in other.invalid.items():
            self.invalid[kind] = self.invalid.get(kind, 0) + n
        self.duplicates += other.duplicates
        self.sent += other.sent
        if self.events is not None and other.events is not None:
            self.events.extend(other.events)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view (without the per-event list)."""
        rate = self.sent / self.elapsed_s if self.elapsed_s else 0.0
        return {
            "sent": self.sent,
            "valid_distinct": sum(self.valid.values()),
            "valid_by_org": dict(sorted(self.valid.items())),
            "duplicates": self.duplicates,
            "invalid": sum(self.invalid.values()),
            "invalid_by_kind": dict(sorted(self.invalid.items())),
            "elapsed_s": round(self.elapsed_s, 3),
            "events_per_s": round(rate),
        }


def _timestamps(plan: Plan, rng: random.Random) -> Iterator[str]:
    """Endless RFC 3339 millisecond timestamps in the plan's span, formatted from integers."""
    start, span = plan.start_ms, plan.end_ms - plan.start_ms
    days: dict[int, str] = {}
    centers = sorted(start + rng.randint(0, span) for _ in range(24))
    width = max(1, min(60_000, span // 100))
    while True:
        if plan.pattern == "bursty" and rng.random() < 0.8:
            ms = int(rng.choice(centers) + rng.expovariate(1 / width) * rng.choice((-1, 1)))
            ms = min(max(ms, start), plan.end_ms)
        else:
            ms = start + rng.randint(0, span)
        second, milli = divmod(ms, 1000)
        day, rest = divmod(second, 86400)
        day_text = days.get(day)
        if day_text is None:
            day_text = days[day] = (_UNIX_DAY0 + timedelta(days=day)).isoformat()
        hour, rest = divmod(rest, 3600)
        minute, sec = divmod(rest, 60)
        yield f"{day_text}T{_TWO[hour]}:{_TWO[minute]}:{_TWO[sec]}.{_THREE[milli]}"


def generate(
    plan: Plan, summary: Summary | None = None
) -> Iterator[tuple[bytes | None, bytes | None, GeneratedKind]]:
    """Yield (key, value, kind) per message; count into `summary` (and its `events` if a list)."""
    summary = Summary() if summary is None else summary
    rng = random.Random(f"{plan.seed}/{plan.shard}")
    run = f"{random.Random(plan.seed).getrandbits(40):010x}-{plan.shard}"
    orgs, keys = plan.orgs, [o.encode() for o in plan.orgs]
    valid_left, dup_left, invalid_left = plan.quotas
    ring: list[tuple[bytes, bytes]] = []
    times = _timestamps(plan, rng)
    events, by_org = summary.events, summary.valid
    for n in range(plan.count):
        i = rng.randrange(len(orgs))
        dups = dup_left if ring else 0  # a retry needs an original first
        pick = rng.randrange(dups + valid_left + invalid_left)
        if pick < dups:
            dup_left -= 1
            summary.duplicates += 1
            summary.sent += 1
            key, value = ring[rng.randrange(len(ring))]
            yield key, value, GeneratedKind.DUPLICATE
            continue
        stamp = next(times)
        if pick >= dups + valid_left:
            invalid_left -= 1
            kind = INVALID_KINDS[rng.randrange(len(INVALID_KINDS))]
            key, value = _invalid(kind, keys[i], orgs[i], f"{run}-{n:x}", stamp)
            summary.invalid[kind.value] = summary.invalid.get(kind.value, 0) + 1
            summary.sent += 1
            yield key, value, kind
            continue
        valid_left -= 1
        org, key = orgs[i], keys[i]
        value = (
            f'{{"schema_version":1,"event_id":"{run}-{n:x}","type":"record.created",'
            f'"org_id":"{org}","record_id":"rec-{run}-{n:x}","occurred_at":"{stamp}Z"}}'
        ).encode()
        if len(ring) < _RING:
            ring.append((key, value))
        else:
            ring[n % _RING] = (key, value)
        by_org[org] = by_org.get(org, 0) + 1
        if events is not None:
            events.append((org, parse_instant(stamp + "Z")[1]))
        summary.sent += 1
        yield key, value, GeneratedKind.VALID


def _invalid(
    kind: GeneratedKind, key: bytes, org: str, eid: str, stamp: str
) -> tuple[bytes, bytes]:
    head = f'{{"schema_version":1,"event_id":"{eid}","type":"record.created"'
    if kind is GeneratedKind.BAD_ORG_ID:
        org = f"bad org/{eid}"
        key = org.encode()
    body = f'{head},"org_id":"{org}","record_id":"rec-{eid}","occurred_at":"{stamp}Z"}}'
    if kind is GeneratedKind.BAD_JSON:
        body = body[: len(body) // 2]
    elif kind is GeneratedKind.MISSING_FIELD:
        body = f'{head},"org_id":"{org}","occurred_at":"{stamp}Z"}}'
    elif kind is GeneratedKind.NAIVE_TIMESTAMP:
        body = body.replace(f"{stamp}Z", stamp)
    elif kind is GeneratedKind.OVERSIZED:
        body = body[:-1] + f',"padding":"{"x" * 17000}"}}'
    return key, body.encode()


def _produce_shard(plan: Plan, kafka: KafkaTarget, topic: str, keep_events: bool) -> Summary:
    from events.publisher import Publisher

    summary = Summary(events=[] if keep_events else None)
    with Publisher(kafka, topic) as publisher:
        publish = publisher.publish_raw
        for key, value, _ in generate(plan, summary):
            publish(key, value)
    return summary


def produce(
    plan: Plan,
    kafka: KafkaTarget,
    topic: str,
    *,
    workers: int = 1,
    ensure: bool = False,
    partitions: int = 6,
    keep_events: bool = False,
) -> Summary:
    """Publish the plan's messages (in `workers` processes) and return what was sent.

    `kafka` is the cluster: Settings (security included) or a plaintext bootstrap string."""
    if ensure:
        from events.topics import ensure_topics

        ensure_topics(kafka, topic, partitions=partitions)
    started = time.perf_counter()
    total = Summary(events=[] if keep_events else None)
    if workers <= 1:
        total.merge(_produce_shard(plan, kafka, topic, keep_events))
    else:
        # spawn, not fork: the parent may hold Kafka client threads (tests, benchmarks).
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            jobs = [
                pool.submit(_produce_shard, shard, kafka, topic, keep_events)
                for shard in plan.shards(workers)
            ]
            for job in jobs:
                total.merge(job.result())
    total.elapsed_s = time.perf_counter() - started
    return total


def _epoch_ms(text: str, name: str) -> int:
    moment, second = parse_instant(text, name)  # ValueError says what is wrong
    return second * 1000 + moment.microsecond // 1000


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2: configuration rejected, 1: other failures)."""
    from events.logs import EXIT_REJECTED
    from events.preflight import check_kafka

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: configuration rejected: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    parser = argparse.ArgumentParser(
        prog="python -m events.produce", description="Publish synthetic record events."
    )
    parser.add_argument("--bootstrap", default=settings.kafka_bootstrap_servers)
    parser.add_argument("--topic", default=settings.record_events_topic)
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--orgs", type=int, default=10, help="orgs org-bufdir-1..N (default 10)")
    who.add_argument("--org", action="append", help="an org id (repeatable)")
    parser.add_argument("--count", type=int, default=1000, help="messages to send")
    parser.add_argument("--start", help="RFC 3339 (default: --end minus 24 h)")
    parser.add_argument("--end", help="RFC 3339 (default: now)")
    parser.add_argument("--pattern", choices=("uniform", "bursty"), default="uniform")
    parser.add_argument("--duplicate-ratio", type=float, default=0.0)
    parser.add_argument("--invalid-ratio", type=float, default=0.0)
    parser.add_argument("--seed", type=int, help="default: random")
    parser.add_argument("--ensure-topics", action="store_true", help="create the topics first")
    parser.add_argument("--partitions", type=int, default=6, help="with --ensure-topics")
    parser.add_argument("--workers", type=int, help="producer processes (default: by count)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        end_ms = _epoch_ms(args.end, "--end") if args.end else int(time.time() * 1000)
        start_ms = _epoch_ms(args.start, "--start") if args.start else end_ms - 86_400_000
        plan = Plan(
            orgs=tuple(args.org or (f"org-bufdir-{i}" for i in range(1, args.orgs + 1))),
            count=args.count,
            start_ms=max(start_ms, 0),
            end_ms=end_ms,
            pattern=args.pattern,
            duplicate_ratio=args.duplicate_ratio,
            invalid_ratio=args.invalid_ratio,
            seed=random.SystemRandom().getrandbits(63) if args.seed is None else args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    workers = args.workers or (1 if plan.count < 50_000 else min(os.cpu_count() or 1, 4))
    kafka = replace(settings, kafka_bootstrap_servers=args.bootstrap)
    try:
        check_kafka(kafka)  # a refused password or certificate fails here, in seconds
        summary = produce(
            plan,
            kafka,
            args.topic,
            workers=workers,
            ensure=args.ensure_topics,
            partitions=args.partitions,
        )
    except ConfigError as exc:
        print(f"error: configuration rejected: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    except EventError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = summary.as_dict() | {"topic": args.topic, "seed": plan.seed, "workers": workers}
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"sent {summary.sent} messages to {args.topic} in {report['elapsed_s']} s "
        f"({report['events_per_s']} events/s, {workers} worker(s), seed {plan.seed})\n"
        f"span {format_utc(plan.start_ms // 1000)} .. {format_utc(plan.end_ms // 1000)}, "
        f"pattern {plan.pattern}\n"
        f"valid (distinct) {report['valid_distinct']}, duplicates {summary.duplicates}, "
        f"invalid {report['invalid']} {report['invalid_by_kind']}"
    )
    for org, n in sorted(summary.valid.items()):
        print(f"  {org}\t{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
