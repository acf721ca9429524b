"""Drill 7 (soak, `make drills`): 2,000 events/s, 200 open streams and 50 count requests/s for
SOAK_SECONDS (default 600) on a private Kafka broker and Redis. Errors must be 0, the Redis
connections and the Python processes' memory flat, and the final counts exact."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
import redis

from api.middleware import BASE_PATH
from config import Settings
from events.topics import ensure_topics
from scripts.harness import (
    Proc,
    child_pids,
    rss_bytes,
    start_api,
    start_projector,
    wait_until,
)
from scripts.kafka_broker import KafkaBroker
from scripts.servers import RedisServer
from tests.integration.drills import Feeder, api_count, call, recent_plan, redis_clients
from tests.integration.projection import wait_projected
from tests.support.api_inputs import count_body, stream_path
from tests.support.live_client import LiveClient

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
EVENTS_PER_S, STREAMS, COUNTS_PER_S = 2000, 200, 50
ORGS, WATCHED = 50, 10  # streams follow 10 orgs over 2 ranges each: 20 shared watches
MB = 1024 * 1024
WARM_UP = min(60, SECONDS // 4)  # seconds before the baseline sample

pytestmark = [pytest.mark.drill, pytest.mark.timeout(SECONDS + 1200)]


class Counter(threading.Thread):
    """POSTs counts at a steady rate over a fixed set of (org, range); keeps every outcome."""

    def __init__(self, port: int, orgs: tuple[str, ...], lo: int, hi: int, rate: float) -> None:
        super().__init__(name="counter", daemon=True)
        rng = random.Random(7)
        self.port, self.interval = port, 1 / rate
        spans = [sorted(rng.sample(range(lo, hi), 2)) for _ in range(40)]
        self.bodies = [count_body(rng.choice(orgs), a, b) for a, b in spans for _ in range(5)]
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        """Count until halted."""
        next_at, i = time.monotonic(), 0
        while not self.halt.is_set():
            body = self.bodies[i % len(self.bodies)]
            i += 1
            try:
                answer = call(self.port, "POST", BASE_PATH, body)
                self.latencies.append(answer.seconds)
                if answer.status not in (200, 201):
                    self.errors.append(f"{answer.status} {answer.body[:200]!r}")
            except Exception as exc:  # counted as an error of the soak
                self.errors.append(repr(exc))
            next_at += self.interval
            self.halt.wait(max(0.0, next_at - time.monotonic()))


def client_names(client: redis.Redis) -> dict[str, int]:
    """Redis connections now, by client name (unnamed ones as '')."""
    names: dict[str, int] = {}
    for entry in client.client_list():
        names[entry.get("name", "")] = names.get(entry.get("name", ""), 0) + 1
    return dict(sorted(names.items()))


def sample(procs: dict[str, int], client: redis.Redis) -> dict[str, float]:
    """RSS (MB) of every process, and Redis's connected_clients and used memory (MB)."""
    found = {name: (rss_bytes(pid) or 0) / MB for name, pid in procs.items()}
    found["redis clients"] = redis_clients(client)
    found["redis used_memory MB"] = int(client.info("memory")["used_memory"]) / MB
    return found


def test_soak(
    drill_settings: Settings,
    private_kafka: Callable[..., KafkaBroker],
    private_redis: RedisServer,
    drill_redis: redis.Redis,
    procs: list[Proc],
) -> None:
    kafka = private_kafka(partitions=6, heap="512m")
    settings = replace(drill_settings, kafka_bootstrap_servers=kafka.bootstrap_servers)
    ensure_topics(settings.kafka_bootstrap_servers, settings.record_events_topic, partitions=6)
    plan = recent_plan(ORGS, EVENTS_PER_S * SECONDS, seed=71, days_ago=1, duplicate_ratio=0.01)
    lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
    procs.append(start_projector(settings))
    procs.append(start_api(settings, WEB_CONCURRENCY="2"))
    projector, api = procs
    port = settings.port
    feeder = Feeder(settings, plan, rate=EVENTS_PER_S, process=True)
    ranges = [(lo - 86400, hi + 86400), (lo, hi)]  # both hold every event of the plan
    watched = [plan.orgs[i % WATCHED] for i in range(STREAMS)]
    streams = [
        LiveClient(port, stream_path(org, *ranges[(i // WATCHED) % 2]))
        for i, org in enumerate(watched)
    ]
    counter = Counter(port, plan.orgs, lo, hi, COUNTS_PER_S)
    started = time.monotonic()
    feeder.start()
    for stream in streams:
        stream.start()
    counter.start()
    try:
        wait_until(lambda: all(s.events for s in streams), 60, "every stream's first event")
        pids = {"projector": projector.pid, "gunicorn master": api.pid}
        for n, worker in enumerate(child_pids(api.pid)):
            pids[f"gunicorn worker {n + 1}"] = worker
        pids.update({"redis": private_redis.pid() or 0, "kafka": kafka.pid() or 0})
        timeline = [(time.monotonic() - started, sample(pids, drill_redis))]
        names = [client_names(drill_redis)]
        next_sample = started + 60
        while time.monotonic() - started < SECONDS:
            if not (feeder.alive() and projector.alive() and api.alive()):
                break
            if time.monotonic() >= next_sample:  # RSS and connections once a minute
                timeline.append((time.monotonic() - started, sample(pids, drill_redis)))
                next_sample += 60
            time.sleep(1.0)  # the load runs meanwhile; this loop only watches the clock
        timeline.append((time.monotonic() - started, sample(pids, drill_redis)))
        names.append(client_names(drill_redis))
        load_seconds = time.monotonic() - started
    finally:
        counter.halt.set()
        feeder.stop()  # the oracle is what was published, to the message
        summary = feeder.finish(timeout=120)
    published_at = time.monotonic()
    wait_projected(settings, drill_redis, timeout=600)
    drained = time.monotonic() - published_at
    finals = {org: api_count(port, org) for org in plan.orgs}
    for org, stream in zip(watched, streams, strict=True):
        stream.wait_count(summary.valid[org], timeout=60)
    stream_errors = sum(len(s.connections) - 1 for s in streams)
    stream_errors += sum(1 for s in streams for c in s.connections if c.status != 200)
    for stream in streams:
        stream.close()
    counter.join(timeout=15)

    latencies = sorted(counter.latencies)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    # The baseline is taken once warm (pools filled, JIT and allocators settled).
    first = next((v for at, v in timeline if at >= WARM_UP), timeline[0][1])
    last = timeline[-1][1]
    print(
        f"\nsoak {load_seconds:.0f} s: {feeder.published} events published "
        f"({feeder.published / load_seconds:.0f}/s), {len(latencies)} count requests "
        f"(p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms), {STREAMS} streams; errors: "
        f"counts {len(counter.errors)}, streams {stream_errors}; projection drained "
        f"{drained:.1f} s after the last publish"
    )
    for at, values in timeline:
        print(f"  t={at:5.0f}s " + " ".join(f"{k}={v:.1f}" for k, v in values.items()))
    print(f"  redis clients by name, first and last sample: {names[0]} / {names[-1]}")
    assert counter.errors == [], counter.errors[:5]
    assert stream_errors == 0
    assert projector.alive() and api.alive()
    assert finals == dict(summary.valid)
    assert last["redis clients"] <= first["redis clients"] + 2, (first, last)
    for name in pids:
        if name.startswith(("projector", "gunicorn")):
            assert last[name] - first[name] < 64, (name, first[name], last[name])
