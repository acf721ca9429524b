"""Partitions assigned while Redis is away stay paused until Redis says where they stand: a
Redis that comes back empty (wiped, replaced) gets every event of the topic, once."""

from __future__ import annotations

import re
import shutil
import urllib.request

import redis

from config import Settings
from events.produce import produce
from scripts.harness import Proc, free_port, start_projector, wait_until
from scripts.servers import RedisServer
from tests.integration.drills import recent_plan
from tests.integration.projection import log_ends, store_for, wait_projected


def _gauge(port: int, state: str) -> float | None:
    """The member's `projector_partitions{state=...}` from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf'^projector_partitions\{{state="{state}"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else None


def test_assignment_while_redis_is_down_then_back_empty_counts_everything_once(
    drill_settings: Settings,
    topics: str,
    private_redis: RedisServer,
    drill_redis: redis.Redis,
    procs: list[Proc],
) -> None:
    settings = drill_settings
    plan = recent_plan(5, 4_000, seed=21, duplicate_ratio=0.02)
    summary = produce(plan, settings.kafka_bootstrap_servers, topics)
    store = store_for(settings, drill_redis)

    # A first run counts everything and commits Kafka offsets at the log end.
    first = start_projector(settings)
    wait_projected(settings, drill_redis, timeout=60)
    assert first.stop() == 0, first.output()[-3000:]
    assert {org: store.count(org, 0, 253_402_300_799) for org in plan.orgs} == summary.valid

    # Redis is lost for good; a projector joins while it is away ...
    private_redis.kill()
    shutil.rmtree(private_redis.data_dir)
    port = free_port()
    procs.append(start_projector(settings, PROJECTOR_METRICS_PORT=str(port)))
    projector = procs[-1]
    wait_until(lambda: _gauge(port, "pending") == 3, 60, "partitions assigned and paused")
    assert _gauge(port, "ready") == 0
    assert projector.alive(), projector.output()[-3000:]

    # ... and it comes back empty: the member reads every partition from the beginning,
    # not from Kafka's committed offsets (which say "all done").
    private_redis.start()
    wait_until(lambda: _gauge(port, "ready") == 3, 60, "partitions positioned")
    wait_projected(settings, drill_redis, timeout=60)
    counts = {org: store.count(org, 0, 253_402_300_799) for org in plan.orgs}
    assert counts == summary.valid
    assert store.positions() == log_ends(settings)
