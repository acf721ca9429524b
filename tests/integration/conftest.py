"""Fixtures of the reliability drills: a private Redis, settings that use it, process clean-up.

Drills stop, kill and restart Redis (and Kafka), so they never touch the shared servers: each
gets its own redis-server (AOF on, everysec) on a free port with its data under tmp_path, or
its own Redis Cluster (`private_cluster`). Tests that run Redis servers of their own are
marked `own_redis` here: they do not use the session's Redis, so make test's cluster pass
(`scripts/suite.py`) leaves them to the single-Redis pass. Drills that only need isolation
(`drill_settings`, `drill_redis`) run on the session's cluster in the cluster pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from config import Settings
from events.redis_client import Client, connect
from scripts.harness import Proc, delete_matching, free_port
from scripts.kafka_broker import KafkaBroker
from scripts.redis_cluster import RedisClusterServer
from scripts.servers import RedisServer

# Fixtures that start a Redis of the test's own: a private redis-server, a private cluster,
# the secured stack of test_secured_connections.py (TLS and ACLs on a single Redis).
OWN_REDIS = ("private_redis", "private_cluster", "secured")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `own_redis` every test that starts a Redis of its own (through these fixtures)."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in OWN_REDIS):
            item.add_marker(pytest.mark.own_redis)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone; killed by pid at teardown, whatever happened."""
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[Callable[..., RedisClusterServer]]:
    """Starts Redis Clusters of this test alone, `private_cluster(masters=3, replicas=0)`, on
    free ports (node timeout 2 s); every node is killed by pid at teardown."""
    made: list[RedisClusterServer] = []

    def make(masters: int = 3, replicas: int = 0) -> RedisClusterServer:
        count = masters * (1 + replicas)
        cluster = RedisClusterServer(
            tmp_path / f"cluster-{len(made)}",
            [free_port() for _ in range(count)],
            replicas=replicas,
            bus_ports=[free_port() for _ in range(count)],
        )
        made.append(cluster)
        cluster.start()
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.kill()


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[Callable[..., KafkaBroker]]:
    """Starts Kafka brokers of this test alone, `private_kafka(partitions=3, heap="384m")`, on
    free ports; every broker is killed by pid at teardown."""
    made: list[KafkaBroker] = []

    def make(partitions: int, heap: str) -> KafkaBroker:
        broker = KafkaBroker(
            tmp_path / f"kafka-{len(made)}",
            free_port(),
            free_port(),
            partitions=partitions,
            heap=heap,
        )
        made.append(broker)
        broker.start()
        return broker

    try:
        yield make
    finally:
        for broker in made:
            broker.kill()


@pytest.fixture
def drill_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test's settings (own topic and prefix) with a free API port: on a private Redis,
    or in cluster mode on the session's cluster (the key prefix keeps the test apart)."""
    drill = replace(settings, port=free_port(), sse_keepalive_seconds=2)
    if settings.redis_cluster:
        return drill
    private: RedisServer = request.getfixturevalue("private_redis")
    return replace(drill, redis_url=private.url)


@pytest.fixture
def drill_redis(drill_settings: Settings) -> Iterator[Client]:
    """A client of the drill's Redis (short timeouts: the server comes and goes); in cluster
    mode the test's keys are removed afterwards, as `redis_client` does."""
    client = connect(drill_settings, timeout=5)
    yield client
    if drill_settings.redis_cluster:
        delete_matching(client, f"{drill_settings.redis_key_prefix}:*")
    client.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes a test starts; each is stopped by pid at teardown, even when the test fails."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop(timeout=15)
