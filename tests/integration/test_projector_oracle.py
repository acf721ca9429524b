"""Events through the real broker and projector: every range's count equals brute force."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone

import redis

from config import Settings
from events.codec import encode
from events.publisher import Publisher
from events.schema import RecordCreated, parse_rfc3339
from tests.integration.projection import (
    oracle_count,
    running_projector,
    store_for,
    wait_projected,
    whole_second,
)

OFFSETS = [
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=5, minutes=45)),
]


def _random_events(rng: random.Random, orgs: list[str], n: int) -> list[RecordCreated]:
    lo = datetime(2018, 1, 1, tzinfo=UTC)
    span = int((datetime(2027, 12, 31, tzinfo=UTC) - lo).total_seconds())
    hot = [lo + timedelta(seconds=rng.randrange(span)) for _ in range(20)]
    events = []
    for i in range(n):
        if rng.random() < 0.3:  # clusters: many events in the same and adjacent seconds
            moment = rng.choice(hot) + timedelta(milliseconds=rng.randrange(-2500, 2500))
        else:
            moment = lo + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(10**6))
        events.append(
            RecordCreated(
                event_id=str(uuid.UUID(int=rng.getrandbits(128))),
                org_id=rng.choice(orgs),
                record_id=f"rec-{i}",
                occurred_at=moment.astimezone(rng.choice(OFFSETS)),
            )
        )
    return events


def _random_ranges(rng: random.Random, seconds: list[int], n: int) -> list[tuple[str, str]]:
    """RFC 3339 bound pairs: second edges, sub-second ranges, multi-year spans, odd offsets."""
    ranges = []
    for _ in range(n):
        kind = rng.randrange(4)
        a = rng.choice(seconds)
        if kind == 0:  # exactly on an event's second, +-1
            b = a + rng.choice([0, 0, 1, 60, 3600])
            a -= rng.choice([0, 1])
        elif kind == 1:  # within one second: fractional bounds in the same second
            b = a
        elif kind == 2:  # multi-year
            b = a + rng.randrange(365 * 86400, 9 * 365 * 86400)
        else:
            b = rng.choice(seconds)
            a, b = min(a, b), max(a, b)
        tz = rng.choice(OFFSETS)
        start = datetime.fromtimestamp(a, UTC).astimezone(tz)
        end = datetime.fromtimestamp(b, UTC).astimezone(tz) + timedelta(
            microseconds=rng.choice([0, 999_000, 999_999])
        )
        ranges.append((start.isoformat(), end.isoformat()))
    return ranges


def test_counts_equal_brute_force_for_random_ranges(
    settings: Settings, topics: str, redis_client: redis.Redis
) -> None:
    rng = random.Random(20261130)
    orgs = [f"org-{i}" for i in range(25)] + ["org-bufdir-42", "a", "Z.9:_-x"]
    events = _random_events(rng, orgs, 4000)
    # Producer retries: the same event (same id, same payload) published again, some much later.
    resent = rng.sample(events, 400)
    stream = events + resent
    rng.shuffle(stream)  # out of order, late events included

    with Publisher(settings.kafka_bootstrap_servers, settings.record_events_topic) as publisher:
        for event in stream:
            key, value = encode(event)
            publisher.publish_raw(key, value)

    with running_projector(settings):
        wait_projected(settings, redis_client)

    store = store_for(settings, redis_client)
    by_org: dict[str, list[int]] = {}
    for event in events:
        by_org.setdefault(event.org_id, []).append(whole_second(event.occurred_at))
    all_seconds = [s for secs in by_org.values() for s in secs]
    checked = 0
    for start_text, end_text in _random_ranges(rng, all_seconds, 400):
        start_s = whole_second(datetime.fromisoformat(start_text))
        end_s = whole_second(datetime.fromisoformat(end_text))
        # The service's own parser must truncate exactly as the oracle does.
        assert whole_second(parse_rfc3339(start_text)) == start_s
        org = rng.choice(orgs)
        expected = oracle_count(by_org.get(org, []), start_s, end_s)
        assert store.count(org, start_s, end_s) == expected, (org, start_text, end_text)
        checked += 1
    assert checked == 400
    # Whole valid range: every distinct event, each once.
    for org in orgs:
        assert store.count(org, 0, 253402300799) == len(by_org.get(org, []))
