"""Drill: a Redis Cluster master SIGKILLed during ingest, then restarted from its AOF, and (with
a replica per master) a master killed for good and replaced by its replica. While its slots
are down the API answers 503 with Retry-After; afterwards the projector and the API carry on
without a restart, and every count is exact."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace

import pytest

from api.middleware import BASE_PATH
from config import Settings
from events.redis_client import connect
from projector import keys
from projector.buckets import MAX_SECOND
from scripts.harness import Proc, free_port, start_api, start_projector, wait_until
from scripts.redis_cluster import RedisClusterServer
from tests.integration.drills import (
    Answer,
    Feeder,
    api_count,
    call,
    inconsistencies,
    read_topic,
    recent_plan,
)
from tests.integration.projection import store_for, wait_projected
from tests.integration.test_drill_redis_kill import TORN, aof_increment
from tests.support.api_inputs import count_body

ORGS = 12
QUICK = 5.0  # seconds: the API's Redis timeouts are 2 s


def _ask_while_down(port: int, org: str, seconds: float) -> list[Answer]:
    """POST counts of an org on the killed node for `seconds`."""
    answers = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = count_body(org, 0, MAX_SECOND)
        answers.append(call(port, "POST", BASE_PATH, body, timeout=QUICK * 2))
        time.sleep(0.1)
    return answers


def _reseeks(port: int) -> float:
    """The projector's projector_reseeks_total."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return float(re.search(r"^projector_reseeks_total (\S+)$", text, re.M).group(1))


@pytest.mark.parametrize("replicas", [0, 1], ids=["restart-from-aof", "failover-to-replica"])
def test_a_master_dies_during_ingest(
    settings: Settings,
    topics: str,
    private_cluster: Callable[..., RedisClusterServer],
    procs: list[Proc],
    replicas: int,
) -> None:
    cluster = private_cluster(masters=3, replicas=replicas)
    settings = replace(settings, redis_url=cluster.url, redis_cluster=True)
    plan = recent_plan(ORGS, 24_000, seed=31 + replicas, duplicate_ratio=0.02)
    metrics_port = free_port()
    procs.append(start_projector(settings, PROJECTOR_METRICS_PORT=str(metrics_port)))
    procs.append(start_api(settings, WEB_CONCURRENCY="1"))
    projector, api = procs
    client = connect(settings)
    store = store_for(settings, client)

    # The master serving the first org's keys is the one that dies.
    org = plan.orgs[0]
    victim = cluster.owner(keys.org_base(settings.redis_key_prefix, org))
    feeder = Feeder(settings, plan, rate=1_500)
    feeder.start()
    try:
        wait_until(lambda: feeder.published >= 6_000, 30, "events to flow")
        wait_until(lambda: store.count(org, 0, MAX_SECOND) > 0, 30, "the org counted")
        aof = aof_increment(cluster.node(victim).data_dir)
        second_ago = aof.stat().st_size
        time.sleep(1.0)
        cluster.kill_node(victim)
        if replicas:
            # Its replica takes over after the node timeout: the API answers 503 meanwhile.
            answers = _ask_while_down(settings.port, org, 1.5)
            wait_until(lambda: victim not in cluster.primaries(), 30, "a replica promoted")
            cluster.wait_ok(30)
            cluster.start_node(victim)  # it comes back as a replica of its successor
        else:
            # A host crash loses up to the last second of `appendfsync everysec`: cut the
            # AOF back to its size a second ago, a few bytes into a command.
            with open(aof, "r+b") as out:
                out.truncate(min(aof.stat().st_size, second_ago + TORN))
            answers = _ask_while_down(settings.port, org, 3.0)
            cluster.start_node(victim)
        cluster.wait_ok(30)
        wait_until(
            lambda: call(settings.port, "GET", "/readyz").status == 200, 30, "the API to recover"
        )
    finally:
        summary = feeder.finish()

    refused = [a for a in answers if a.status == 503]
    assert refused, [a.status for a in answers]
    for answer in refused:
        assert answer.headers["content-type"] == "application/problem+json", answer
        assert int(answer.headers["retry-after"]) > 0, answer
    assert all(a.status in (200, 201, 503) for a in answers), [a.status for a in answers]
    assert max(a.seconds for a in answers) < QUICK

    # Nothing restarted by hand; every count exact, and the projection consistent.
    wait_projected(settings, client, timeout=120)
    assert projector.alive(), projector.output()[-3000:]
    assert api.alive(), api.output()[-3000:]
    for name in plan.orgs:
        assert api_count(settings.port, name) == summary.valid.get(name, 0), name
        assert store.count(name, 0, MAX_SECOND) == summary.valid.get(name, 0), name
    assert inconsistencies(settings, client, read_topic(settings)) == []
    if not replicas:
        # The node came back without its last second: the projector noticed and replayed it.
        assert _reseeks(metrics_port) >= 1
    client.close()
