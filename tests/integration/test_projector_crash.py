"""The projector process SIGKILLed at random moments while ingesting: final counts exact."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import redis

from config import Settings
from events.codec import encode
from events.publisher import Publisher
from events.schema import RecordCreated
from scripts.harness import start_projector
from tests.integration.projection import store_for, wait_projected, whole_second

TOTAL = 100_000
KILLS = 10
ORGS = [f"org-crash-{i}" for i in range(20)]


def _publish_steadily(settings: Settings, events: list[RecordCreated], seconds: float) -> None:
    """Publish over about `seconds`, so the kills land while events keep arriving."""
    chunks = 50
    per_chunk = len(events) // chunks + 1
    with Publisher(settings.kafka_bootstrap_servers, settings.record_events_topic) as publisher:
        for i in range(0, len(events), per_chunk):
            for event in events[i : i + per_chunk]:
                publisher.publish_raw(*encode(event))
            publisher.flush()
            time.sleep(seconds / chunks)


def test_sigkill_ten_times_during_ingest_loses_and_doubles_nothing(
    settings: Settings, topics: str, redis_client: redis.Redis
) -> None:
    rng = random.Random(7)
    base = datetime(2025, 6, 1, tzinfo=UTC)
    distinct = [
        RecordCreated(
            event_id=str(uuid.UUID(int=rng.getrandbits(128))),
            org_id=rng.choice(ORGS),
            record_id=f"r{i}",
            occurred_at=base + timedelta(seconds=rng.randrange(400 * 86400)),
        )
        for i in range(int(TOTAL * 0.95))
    ]
    # 5 % producer retries, so dedup is exercised across crashes as well.
    stream = distinct + rng.sample(distinct, TOTAL - len(distinct))
    rng.shuffle(stream)
    # Small batches: more of them are in flight when each kill lands.
    settings = replace(settings, projector_max_batch=500)

    publisher = threading.Thread(target=_publish_steadily, args=(settings, stream, 20.0))
    publisher.start()
    store = store_for(settings, redis_client)
    kills = 0
    progress = []  # records applied by each killed run: the kills must land mid-ingest
    try:
        while kills < KILLS:
            before = sum(store.positions().values())
            proc = start_projector(settings)
            time.sleep(rng.uniform(1.0, 2.5))
            assert proc.alive(), proc.output()[-3000:]
            proc.kill()
            kills += 1
            progress.append(sum(store.positions().values()) - before)
    finally:
        publisher.join()
    assert sum(1 for p in progress if p > 0) >= KILLS // 2, progress
    final = start_projector(settings)
    try:
        wait_projected(settings, redis_client, timeout=180)
    finally:
        assert final.stop() == 0, final.output()[-3000:]

    expected: dict[str, list[int]] = {org: [] for org in ORGS}
    for event in distinct:
        expected[event.org_id].append(whole_second(event.occurred_at))
    for org, seconds in expected.items():
        assert store.count(org, 0, 253402300799) == len(seconds), org
        lo, hi = sorted(rng.sample(seconds, 2))
        assert store.count(org, lo, hi) == sum(1 for s in seconds if lo <= s <= hi), org
    assert kills == KILLS
