"""The POST's snapshot script (api/snapshots.py: one round trip on a single Redis, two on a
cluster) against a real Redis: it must count as count.lua does through CounterStore, decide
is_complete from the caught_up_at CounterStore reports, and upsert one snapshot per range."""

from __future__ import annotations

import random

import pytest
import redis

from api.snapshots import SnapshotStore
from events.redis_client import is_cluster
from projector.buckets import MAX_SECOND
from projector.live import LiveCounters, LiveGeneration
from projector.store import CounterStore, Increment
from tests.support.redis_sends import count_sends

TOPIC = "record-events"
NOW = 1_774_521_852  # 2026-03-26T10:44:12Z
GRACE = 300

pytestmark = pytest.mark.integration


@pytest.fixture
def counters(redis_client: redis.Redis, key_prefix: str) -> CounterStore:
    return CounterStore(redis_client, key_prefix, TOPIC)


@pytest.fixture
def snapshots(redis_client: redis.Redis, key_prefix: str) -> SnapshotStore:
    live = LiveGeneration(redis_client, key_prefix, ttl=3_600)  # round trips are counted
    return SnapshotStore(redis_client, LiveCounters(redis_client, key_prefix, TOPIC, live))


def count_and_upsert(
    counters: CounterStore, snapshots: SnapshotStore, org: str, start: int, end: int, at: float
):
    return snapshots.count_and_upsert(org, start, end, GRACE, at, f"id-{org}-{start}-{end}")


def test_counts_equal_the_count_script(
    counters: CounterStore, snapshots: SnapshotStore, redis_client: redis.Redis
) -> None:
    rng = random.Random(3)
    seconds = [rng.randrange(NOW - 5 * 365 * 86_400, NOW) for _ in range(3_000)]
    seconds += [0, MAX_SECOND]
    incs = [Increment("org-1", f"e{i}", s, 0, i, NOW) for i, s in enumerate(seconds)]
    counters.apply(incs, {0: len(incs)})
    spans = [0, 1, 59, 3_600, 86_400, 90 * 86_400, 365 * 86_400, 3_652 * 86_400]
    seen = set()
    for i in range(300):
        start = rng.choice([0, rng.randrange(NOW - 6 * 365 * 86_400, NOW)])
        end = min(MAX_SECOND, start + rng.choice(spans))
        snapshot, created = count_and_upsert(counters, snapshots, "org-1", start, end, NOW + i)
        assert created is ((start, end) not in seen)
        seen.add((start, end))
        assert snapshot.record_count == counters.count("org-1", start, end), (start, end)
        stored = snapshots.get(snapshot.id)
        assert stored == snapshot
    everything, _ = count_and_upsert(counters, snapshots, "org-1", 0, MAX_SECOND, NOW + 1_000)
    assert everything.record_count == len(seconds)


# (partition times to store, the partition count to store) in turn; after each step the
# script's is_complete must follow CounterStore's caught_up_at.
STEPS = [
    ({}, None),  # nothing stored: never complete
    ({0: NOW - 100.5}, None),  # no count declared: the least stored time
    ({1: NOW - 1000.25}, None),
    ({}, 3),  # 3 declared, partition 2 missing: unknown
    ({2: NOW - 50.0}, None),  # all 3 present
    ({}, 2),  # fewer declared: partition 2 is ignored
]


def test_is_complete_follows_caught_up_at(counters: CounterStore, snapshots: SnapshotStore) -> None:
    ends = [NOW - d for d in (0, 299, 300, 301, 350, 400, 700, 1_299, 1_300, 1_301, 5_000)]
    ends += [NOW - 1000.25 - GRACE, NOW - 100.5 - GRACE]
    for step, (times, partitions) in enumerate(STEPS):
        if times or partitions:
            counters.set_caught_up(times, partitions)
        _, caught_up_at = counters.count_and_caught_up("org-2", 0, 1)
        for end in ends:
            end = int(end)
            snapshot, _ = count_and_upsert(counters, snapshots, "org-2", 0, end, NOW + step)
            expected = caught_up_at is not None and end + GRACE <= caught_up_at
            assert snapshot.is_complete is expected, (step, end, caught_up_at)
            assert snapshots.get(snapshot.id).is_complete is expected


def test_refresh_keeps_one_snapshot_and_an_older_refresh_changes_nothing(
    counters: CounterStore, snapshots: SnapshotStore
) -> None:
    first, created = count_and_upsert(counters, snapshots, "org-3", 10, 20, NOW)
    assert created and first.record_count == 0 and first.snapshot_at == NOW
    counters.apply([Increment("org-3", "a", 15, 0, 0, NOW)], {0: 1})
    later, created = snapshots.count_and_upsert("org-3", 10, 20, GRACE, NOW + 5, "other-id")
    assert not created
    assert later.id == first.id and later.record_count == 1 and later.snapshot_at == NOW + 5
    assert snapshots.get(first.id) == later
    # A refresh computed before the stored one (an overtaken request) returns what is stored.
    older, created = count_and_upsert(counters, snapshots, "org-3", 10, 20, NOW + 1)
    assert not created and older == later
    page = snapshots.page(0, 10, "org-3", None)
    assert page.total == 1 and page.items == [later]


def test_a_post_is_one_round_trip_on_a_single_redis_and_two_on_a_cluster(
    counters: CounterStore,
    snapshots: SnapshotStore,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counters.apply([Increment("org-4", "a", NOW, 0, 0, NOW)], {0: 1})
    count_and_upsert(counters, snapshots, "org-4", 0, 1, NOW)  # the scripts are loaded now
    sends = count_sends(monkeypatch)
    for start, end in [(NOW, NOW), (0, MAX_SECOND), (NOW - 86_400, NOW + 3_601)]:
        sends.clear()
        snapshot, _ = count_and_upsert(counters, snapshots, "org-4", start, end, NOW + 1)
        assert snapshot.record_count == 1
        assert len(sends) == (2 if is_cluster(redis_client) else 1)
