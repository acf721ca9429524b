"""Shared pieces of the projector tests: an in-process projector, waiting for catch-up,
and a brute-force oracle computed straight from the events, independent of the buckets."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import redis

from config import Settings
from events.redis_client import Client
from events.topics import delete_topics, dlq_topic_for, end_offsets
from projector.consumer import Projector
from projector.store import CounterStore
from scripts.harness import delete_matching, wait_until
from tests.conftest import Services

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def module_settings(services: Services, name: str) -> Settings:
    """Settings with a topic, key prefix and consumer group of their own (a module's world)."""
    tag = uuid.uuid4().hex[:10]
    return replace(
        Settings.from_env({}),
        kafka_bootstrap_servers=services.kafka_bootstrap_servers,
        redis_url=services.redis_url,
        redis_cluster=services.redis_cluster,
        record_events_topic=f"record-events-{name}-{tag}",
        redis_key_prefix=f"t{name}{tag}",
        projector_group_id=f"{name}-{tag}-projector",
        projector_metrics_port=0,
    )


def remove_module_world(settings: Settings, client: Client) -> None:
    """Delete the keys of `module_settings`' prefix and its topics; close the client."""
    delete_matching(client, f"{settings.redis_key_prefix}:*")
    client.close()
    topic = settings.record_events_topic
    delete_topics(settings.kafka_bootstrap_servers, [topic, dlq_topic_for(topic)])


def whole_second(moment: datetime) -> int:
    """A timezone-aware instant as whole UTC seconds since the epoch (the oracle's own)."""
    delta = moment.astimezone(UTC) - EPOCH
    return delta.days * 86400 + delta.seconds


def oracle_count(seconds: Iterable[int], start: int, end: int) -> int:
    """Brute force: how many of `seconds` lie in [start, end]."""
    return sum(1 for s in seconds if start <= s <= end)


def log_ends(settings: Settings) -> dict[int, int]:
    """The test topic's end offset per partition, asked of the broker now."""
    return end_offsets(settings.kafka_bootstrap_servers, settings.record_events_topic)


def store_for(settings: Settings, client: redis.Redis) -> CounterStore:
    """The read side the API uses, for the test's topic and prefix."""
    return CounterStore(
        client,
        settings.redis_key_prefix,
        settings.record_events_topic,
        settings.dedup_window_seconds,
    )


def wait_projected(settings: Settings, client: redis.Redis, timeout: float = 120.0) -> None:
    """Wait until Redis's stored positions reach the end of every partition."""
    ends = log_ends(settings)
    store = store_for(settings, client)

    def done() -> bool:
        stored = store.positions()
        return all(stored.get(p, 0) >= end for p, end in ends.items() if end > 0)

    wait_until(done, timeout, f"projection to reach log ends {ends}")


@contextmanager
def running_projector(settings: Settings) -> Iterator[Projector]:
    """A projector polling in a background thread of this process."""
    projector = Projector(settings)
    thread = threading.Thread(target=projector.run, name="projector", daemon=True)
    thread.start()
    try:
        yield projector
    finally:
        projector.request_stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "projector did not stop within 30s"


def per_org(events: Iterable[tuple[str, int]]) -> Counter[str]:
    """Distinct events per org."""
    return Counter(org for org, _ in events)
