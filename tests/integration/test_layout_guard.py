"""The key-layout guard for real: a projection the code of before wrote (no layout mark, its day
hashes and positions) is refused -- the projector exits 2 with one line and writes nothing, the
API answers 503 on /readyz and on counts -- and the documented upgrade leaves it behind: a
rebuild into a new generation, after which counts are exact and projectors run again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from api import create_app
from api.middleware import BASE_PATH
from config import Settings
from events.produce import produce
from events.topics import delete_topics, dlq_topic_for, ensure_topics
from projector import keys, layout
from projector.registry import GenerationRegistry
from projector.store import CounterStore
from projector.sweep import nodes
from scripts.harness import Proc, free_port, start_api, start_projector, start_rebuild, wait_until
from tests.integration.drills import api_count, recent_plan
from tests.support.api_inputs import count_body

pytestmark = pytest.mark.integration

NOW = 1_774_521_852
OLD_ORG = "org-old-1"


def write_old_layout(client: Any, settings: Settings) -> None:
    """What the code of before (layout 1) left in Redis: a day hash of an org, its offsets, the
    partition positions and caught-up times of generation 1 -- and no layout mark."""
    prefix, topic = settings.redis_key_prefix, settings.record_events_topic
    day = NOW // 86_400
    client.hset(f"{prefix}:{{{OLD_ORG}}}:d:{day}", mapping={"100": 3, "-1": 3, "-1441": 3})
    client.hset(f"{prefix}:{{{OLD_ORG}}}:pos", mapping={f"{topic}:0": 2})
    client.hset(keys.positions_key(prefix, topic), mapping={"0": 3})
    client.hset(keys.caught_up_key(prefix, topic), mapping={"0": NOW, "partitions": 1, "min": NOW})


def dump_all(client: Any, prefix: str) -> dict[bytes, bytes]:
    """Every key under the prefix with its serialised value, on every node."""
    found: dict[bytes, bytes] = {}
    for node in nodes(client):
        for key in node.scan_iter(match=f"{prefix}:*", count=1000):
            found[key] = node.dump(key)
    return found


@pytest.fixture
def deployment(settings: Settings) -> Iterator[Settings]:
    """This test's topic (1 partition), API port, its own rebuild metrics port."""
    ours = replace(settings, port=free_port(), rebuild_metrics_port=0)
    topic = ours.record_events_topic
    ensure_topics(ours.kafka_bootstrap_servers, topic, partitions=1)
    try:
        yield ours
    finally:
        delete_topics(ours.kafka_bootstrap_servers, [topic, dlq_topic_for(topic)])


def test_projector_refuses_the_old_layout_and_writes_nothing(
    deployment: Settings, redis_client: Any, procs: list[Proc]
) -> None:
    write_old_layout(redis_client, deployment)
    before = dump_all(redis_client, deployment.redis_key_prefix)
    proc = start_projector(deployment)
    procs.append(proc)
    wait_until(lambda: not proc.alive(), 60, "the projector to refuse")
    output = proc.output()
    assert proc.popen.returncode == 2, output[-2000:]
    assert "generation 1 of the projection is written in an older key layout" in output
    assert "python -m projector rebuild" in output
    assert dump_all(redis_client, deployment.redis_key_prefix) == before  # not even a mark


def test_api_answers_503_over_the_old_layout_and_changes_nothing(
    deployment: Settings, redis_client: Any
) -> None:
    write_old_layout(redis_client, deployment)
    before = dump_all(redis_client, deployment.redis_key_prefix)
    app = create_app(deployment)
    try:
        client = app.test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "key layout" in ready.get_json()["detail"]
        counted = client.post(BASE_PATH, json=count_body(OLD_ORG, NOW - 86_400, NOW))
        assert counted.status_code == 503
        assert counted.headers["Retry-After"]
    finally:
        app.extensions["period-record-counts"].redis.close()
    assert dump_all(redis_client, deployment.redis_key_prefix) == before  # no snapshot stored


def test_a_new_deployment_is_claimed_for_this_layout(
    deployment: Settings, redis_client: Any
) -> None:
    prefix = deployment.redis_key_prefix
    store = CounterStore(redis_client, prefix, deployment.record_events_topic)
    assert layout.read_mark(redis_client, prefix, 1) is None
    layout.require(redis_client, prefix, store)
    assert layout.read_mark(redis_client, prefix, 1) == keys.LAYOUT
    layout.require(redis_client, prefix, store)  # and accepted from then on
    layout.check(redis_client, prefix, store)


def test_upgrade_by_rebuild_leaves_the_old_layout_behind(
    deployment: Settings, redis_client: Any, procs: list[Proc]
) -> None:
    write_old_layout(redis_client, deployment)
    prefix = deployment.redis_key_prefix
    plan = recent_plan(3, 600, seed=int(uuid.uuid4().int % 10_000), duplicate_ratio=0.05)
    summary = produce(
        plan, deployment.kafka_bootstrap_servers, deployment.record_events_topic, workers=1
    )
    rebuild = start_rebuild(deployment, "--progress-every", "1")
    procs.append(rebuild)
    wait_until(lambda: not rebuild.alive(), 180, "the rebuild to finish")
    assert rebuild.popen.returncode == 0, rebuild.output()[-3000:]
    registry = GenerationRegistry(redis_client, prefix, deployment.dedup_window_seconds)
    assert registry.read().live.number == 2
    assert layout.read_mark(redis_client, prefix, 2) == keys.LAYOUT
    # The old generation's keys went with the switch (deleted after the readers' grace).
    assert not redis_client.exists(f"{prefix}:{{{OLD_ORG}}}:d:{NOW // 86_400}")
    projector = start_projector(deployment)
    procs.append(projector)
    api = start_api(deployment)
    procs.append(api)
    for org, published in summary.valid.items():
        assert api_count(deployment.port, org) == published
    assert api_count(deployment.port, OLD_ORG) == 0  # what only the old layout held is gone
    wait_until(
        lambda: "projector started" in projector.output() or not projector.alive(),
        60,
        "the projector to start",
    )
    assert projector.alive(), projector.output()[-2000:]
