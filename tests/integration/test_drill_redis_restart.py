"""Drill 1: Redis shut down cleanly and restarted (AOF on) while events flow and streams are
open. Snapshots and earlier counts come back identical; meanwhile the API answers 503 with
Retry-After, quickly; the projector, the API and the streams recover by themselves."""

from __future__ import annotations

import time

import redis

from api.middleware import BASE_PATH
from config import Settings
from events.produce import produce
from projector.buckets import MAX_SECOND
from scripts.harness import Proc, start_api, start_projector, wait_until
from scripts.servers import RedisServer
from tests.integration.drills import Answer, Feeder, api_count, call, recent_plan
from tests.integration.projection import store_for, wait_projected
from tests.support.api_inputs import count_body, stream_path
from tests.support.live_client import LiveClient

QUICK = 5.0  # seconds: the API's Redis timeouts are 2 s
OUTAGE = 5.0  # seconds Redis stays down
ORGS = 4


def _outage_answers(port: int, snapshot: str, org: str) -> list[tuple[str, Answer]]:
    """Ask every kind of question for OUTAGE seconds; each answer with its name."""
    asks = [
        ("GET snapshot", "GET", f"{BASE_PATH}/{snapshot}", None),
        ("POST count", "POST", BASE_PATH, count_body(org, 0, MAX_SECOND)),
        ("GET list", "GET", f"{BASE_PATH}?limit=5", None),
        ("GET readyz", "GET", "/readyz", None),
        ("GET stream", "GET", stream_path(org), None),
    ]
    answers = []
    deadline = time.monotonic() + OUTAGE
    while time.monotonic() < deadline:
        for name, method, path, body in asks:
            answers.append((name, call(port, method, path, body, timeout=QUICK * 2)))
    return answers


def test_redis_restart_under_load(
    drill_settings: Settings,
    topics: str,
    private_redis: RedisServer,
    drill_redis: redis.Redis,
    procs: list[Proc],
) -> None:
    settings = drill_settings
    before = recent_plan(ORGS, 2000, seed=11, days_ago=3, duplicate_ratio=0.02)
    during = recent_plan(ORGS, 3000, seed=12, days_ago=1, duplicate_ratio=0.02)
    early = produce(before, settings.kafka_bootstrap_servers, topics)
    procs.append(start_projector(settings))
    procs.append(start_api(settings, WEB_CONCURRENCY="2"))
    projector, api = procs
    port = settings.port
    store = store_for(settings, drill_redis)
    wait_projected(settings, drill_redis, timeout=60)

    # Before: a snapshot and a count per org over the early day, and a stream per org.
    lo, hi = before.start_ms // 1000, before.end_ms // 1000
    snapshots, counts = {}, {}
    for org in before.orgs:
        created = call(port, "POST", BASE_PATH, count_body(org, lo, hi))
        assert created.status == 201, created
        snapshots[org] = created.json()["id"]
        counts[org] = created.json()["record_count"]
        assert counts[org] == early.valid[org]
    bodies = {org: call(port, "GET", f"{BASE_PATH}/{sid}").body for org, sid in snapshots.items()}
    streams = {org: LiveClient(port, stream_path(org)) for org in before.orgs}
    for org, stream in streams.items():
        stream.start()
        stream.wait_count(early.valid[org], timeout=15)

    feeder = Feeder(settings, during, rate=300)
    feeder.start()
    try:
        wait_until(lambda: feeder.published >= 600, 30, "events to flow")
        down_at = time.monotonic()
        private_redis.stop()  # SIGTERM: Redis fsyncs the AOF and exits
        answers = _outage_answers(port, snapshots[before.orgs[0]], before.orgs[0])
        private_redis.start()
        up_at = time.monotonic()
        wait_until(lambda: call(port, "GET", "/readyz").status == 200, 30, "the API to recover")
        api_back = time.monotonic() - up_at
        restored = sum(store.positions().values())
        wait_until(lambda: sum(store.positions().values()) > restored, 30, "the projector")
        projector_back = time.monotonic() - up_at
    finally:
        late = feeder.finish()

    # While Redis was away: 503 + Retry-After as problem+json, quickly, nothing else.
    assert answers, "no request was made during the outage"
    slowest = max(a.seconds for _, a in answers)
    by_kind = {name: max(a.seconds for n, a in answers if n == name) for name, _ in answers}
    print(
        f"\nredis down {up_at - down_at:.1f} s: {len(answers)} requests, all "
        f"{sorted({a.status for _, a in answers})}; slowest by kind (s) "
        f"{ {k: round(v, 2) for k, v in by_kind.items()} }; after the restart the API was "
        f"ready in {api_back:.2f} s and the projector applying in {projector_back:.2f} s"
    )
    for name, answer in answers:
        assert answer.status == 503, (name, answer)
        assert answer.headers["content-type"] == "application/problem+json", (name, answer)
        assert int(answer.headers["retry-after"]) > 0, (name, answer)
        assert answer.json()["status"] == 503
    assert slowest < QUICK, slowest

    # Afterwards: nothing restarted by hand; snapshots and earlier counts identical.
    assert projector.alive() and api.alive()
    for org, sid in snapshots.items():
        assert call(port, "GET", f"{BASE_PATH}/{sid}").body == bodies[org], org
    wait_projected(settings, drill_redis, timeout=90)
    resumed = time.monotonic()
    for org in before.orgs:
        total = early.valid[org] + late.valid.get(org, 0)
        assert api_count(port, org, lo, hi) == counts[org], org
        assert api_count(port, org) == total, org
        # The streams that stayed open through the outage reach the final count.
        streams[org].wait_count(total, timeout=30)
    connections = [len(stream.connections) for stream in streams.values()]
    print(
        f"streams at the final count {time.monotonic() - resumed:.2f} s after projection ended; "
        f"connections per stream {connections}"
    )
    for stream in streams.values():
        stream.close()
        assert all(c.status in (None, 200) for c in stream.connections), stream.connections
