"""The data set the API benches share: events published to Kafka, projected into Redis by the
real projector, copied into a temporary PostgreSQL (bench/pg.py), served by the real API;
every org's total checked before anything is timed, everything stopped by pid afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any

from bench.common import bench_settings, cleanup
from bench.pg import PgServer, load_records
from bench.ranges import DAY
from config import Settings
from events.connections import describe_kafka, describe_redis
from events.produce import Plan, Summary, produce
from events.redis_client import connect
from events.topics import end_offsets
from projector.buckets import MAX_SECOND
from projector.store import CounterStore
from scripts.harness import Proc, child_pids, free_port, start_api, start_projector, wait_until
from tests.support.oracles import ExactCounts

DATA_YEARS = 12


def distinct_plan(
    orgs: Sequence[str], distinct: int, start_ms: int, end_ms: int, seed: int, dup: float = 0.01
) -> Plan:
    """A plan of at least `distinct` distinct events (plus `dup` retries) spread over `orgs`."""
    count = round(distinct / (1 - dup))
    while Plan(tuple(orgs), count, start_ms, end_ms, duplicate_ratio=dup).quotas[0] < distinct:
        count += 1
    return Plan(tuple(orgs), count, start_ms, end_ms, duplicate_ratio=dup, seed=seed)


def publish(settings: Settings, events: int, orgs: int, seed: int) -> tuple[Plan, Summary]:
    """Publish `events` distinct events (+1 % retries) over DATA_YEARS years ending now."""
    end_ms = int(time.time()) * 1000
    start_ms = end_ms - int(DATA_YEARS * 365.25 * DAY * 1000)
    names = [f"org-bench-{i}" for i in range(1, orgs + 1)]
    plan = distinct_plan(names, events, start_ms, end_ms, seed)
    summary = produce(plan, settings, settings.record_events_topic, workers=2, keep_events=True)
    return plan, summary


def wait_caught_up(
    store: CounterStore, ends: dict[int, int], timeout: float = 3600, interval: float = 0.2
) -> None:
    """Until Redis's position of every partition is at its log end (`ends`)."""
    wait_until(
        lambda: all(store.positions().get(p, 0) >= e for p, e in ends.items() if e),
        timeout,
        "projector to catch up",
        interval=interval,
    )


def check_totals(store: CounterStore, valid: dict[str, int], where: str = "") -> None:
    """Fail loudly unless every org's all-time count in Redis is what was published."""
    for org, n in sorted(valid.items()):
        total = store.count(org, 0, MAX_SECOND)
        if total != n:
            raise SystemExit(f"COUNT MISMATCH{where}: {org} has {total} in Redis, {n} published")


class World:
    """One bench's services: fresh topic and key prefix, a Redis client, PostgreSQL, and the
    processes it started (`procs`: projector first, then the API), all stopped on exit."""

    def __init__(self, name: str) -> None:
        settings = bench_settings(name)
        self.settings = replace(settings, port=free_port(), log_level="WARNING", web_concurrency=2)
        self.pg = PgServer()
        self.procs: list[Proc] = []
        self.client: Any = connect(self.settings)
        self.store = CounterStore(
            self.client, self.settings.redis_key_prefix, self.settings.record_events_topic
        )
        self.projecting_since = self.projected_s = 0.0

    def __enter__(self) -> World:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.pg.stop()
        self.client.close()
        cleanup(self.settings)

    def describe(self) -> str:
        """Where Kafka and Redis are."""
        return f"kafka {describe_kafka(self.settings)}, redis {describe_redis(self.settings)}"

    def start_pg(self) -> str:
        """Start PostgreSQL; one line about it."""
        self.pg.start()
        return f"PostgreSQL {self.pg.version} on 127.0.0.1:{self.pg.port} (pid {self.pg.pid})"

    def copy_to_pg(self, events: list[tuple[str, int]]) -> int:
        """The events into PostgreSQL's `records` (indexed, all pages all-visible); rows."""
        with self.pg.connect() as conn:
            return load_records(conn, events)

    def project(
        self, summary: Summary, meanwhile: Callable[[list[tuple[str, int]]], None]
    ) -> ExactCounts:
        """Start the projector on what was published, run `meanwhile(events)` (the copies into
        the baselines) while it projects, wait until it caught up, check every org's total,
        start the API; the oracle of the events (which the summary lets go of then)."""
        events = summary.events or []
        ends = end_offsets(self.settings, self.settings.record_events_topic)
        self.projecting_since = time.perf_counter()
        self.procs.append(start_projector(self.settings))
        meanwhile(events)
        wait_caught_up(self.store, ends)
        self.projected_s = time.perf_counter() - self.projecting_since
        check_totals(self.store, summary.valid)
        self.procs.append(start_api(self.settings))
        oracle = ExactCounts(events)
        summary.events = []
        return oracle

    def pids(self) -> dict[str, int]:
        """The process trees that belong to this run (the API's workers one by one), for
        `CpuMeter`."""
        workers = child_pids(self.api.pid)
        pids = {f"API worker {i + 1}": pid for i, pid in enumerate(workers)}
        pids["Redis"] = int(self.client.info("server")["process_id"])
        pids["projector (idle)"] = self.projector.pid
        pids["PostgreSQL"] = self.pg.pid or 0
        # Its own time and that of the children it waited for (wrk): the rest still run.
        pids["load client (wrk, or this process)"] = -1
        return pids

    @property
    def projector(self) -> Proc:
        """The projector process."""
        return self.procs[0]

    @property
    def api(self) -> Proc:
        """The API process (gunicorn's master)."""
        return self.procs[1]
