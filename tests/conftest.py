"""Fixtures: real Kafka and Redis for every test that needs them, with isolated state.

Where the servers come from, in order: `KAFKA_BOOTSTRAP_SERVERS` / `REDIS_URL` when set;
testcontainers when a Docker engine answers; otherwise the local stack (`scripts/stack.py`),
started here if it is not running. Integration tests never skip for want of a service.

`REDIS_CLUSTER=true` (make test's cluster pass, `scripts/suite.py`) makes the session's Redis a
Redis Cluster: `REDIS_URL` names one of its nodes, or the local stack's cluster is used. The
`redis_client` and `settings` fixtures then speak cluster.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from config import Settings, StackSettings
from events.redis_client import Client, connect
from scripts.harness import delete_matching


@dataclass(frozen=True)
class Services:
    """Addresses of the real Kafka broker and Redis the tests use."""

    kafka_bootstrap_servers: str
    redis_url: str
    redis_cluster: bool = False


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """The session's Kafka and Redis: from env, testcontainers, or the local stack."""
    given = StackSettings.from_env()
    kafka_env, redis_env = given.kafka_bootstrap_servers, given.redis_url
    cluster = Settings.from_env().redis_cluster
    if kafka_env and redis_env:
        yield Services(kafka_env, redis_env, cluster)
        return
    if not cluster and _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.redis import RedisContainer

        with KafkaContainer().with_kraft() as kafka, RedisContainer() as red:
            host, port = red.get_container_host_ip(), red.get_exposed_port(6379)
            yield Services(
                kafka_env or kafka.get_bootstrap_server(),
                redis_env or f"redis://{host}:{port}/0",
            )
        return
    from scripts import stack
    from scripts.redis_cluster import MIN_MASTERS

    info = stack.ensure_started(max(stack.CLUSTER_NODES, MIN_MASTERS) if cluster else 0)
    yield Services(kafka_env or info.kafka_bootstrap_servers, redis_env or info.redis_url, cluster)


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[Client]:
    """A client of the real Redis (a RedisCluster in cluster mode); the test's keys (by
    prefix, on every primary) are removed afterwards."""
    client = connect(settings, timeout=30)
    yield client
    delete_matching(client, f"{settings.redis_key_prefix}:*")
    client.close()


@pytest.fixture
def topic_name() -> str:
    """A record-events topic name no other test uses (its DLQ is `<name>.dlq`)."""
    return f"record-events-{uuid.uuid4().hex[:10]}"


def settings_for(services: Services, key_prefix: str, topic_name: str) -> Settings:
    """Settings pointing at the real services, with this topic and key prefix."""
    return replace(
        Settings.from_env({}),
        kafka_bootstrap_servers=services.kafka_bootstrap_servers,
        redis_url=services.redis_url,
        redis_cluster=services.redis_cluster,
        record_events_topic=topic_name,
        redis_key_prefix=key_prefix,
        projector_group_id=f"{topic_name}-projector",
        projector_metrics_port=0,
    )


@pytest.fixture
def settings(services: Services, key_prefix: str, topic_name: str) -> Settings:
    """Settings pointing at the real services, with this test's own topic and key prefix."""
    return settings_for(services, key_prefix, topic_name)


@pytest.fixture
def topics(settings: Settings) -> Iterator[str]:
    """The test's record-events topic (3 partitions) and its DLQ, created now, deleted after."""
    import contextlib

    from events.schema import EventError
    from events.topics import delete_topics, dlq_topic_for, ensure_topics

    topic = settings.record_events_topic
    ensure_topics(settings.kafka_bootstrap_servers, topic, partitions=3)
    yield topic
    with contextlib.suppress(EventError):  # best effort: clean-up must not fail the test
        delete_topics(settings.kafka_bootstrap_servers, [topic, dlq_topic_for(topic)])
