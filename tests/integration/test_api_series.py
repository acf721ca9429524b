"""`GET /series` through the real broker, projector and Redis, against brute force.

Events over several years, crowded around the DST changes of the zones under test, go through
Kafka and the projector; hundreds of random (range, interval, zone) triples are then asked of
the API. Every bucket must equal a brute-force count of the published events over its bounds,
the buckets must be the zone's calendar intervals (each event's interval found on its own,
from its local time), and the sum must equal the POST count of the range.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.intervals import zone
from api.middleware import BASE_PATH
from api.series import SeriesSchema
from config import Settings
from events.publisher import Publisher
from events.redis_client import connect
from events.schema import RecordCreated, format_utc, parse_instant
from events.topics import ensure_topics
from scripts.harness import start_projector
from tests.conftest import Services
from tests.integration.projection import (
    module_settings,
    remove_module_world,
    wait_projected,
)

ZONES = ["Europe/Oslo", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
INTERVALS = ["hour", "day", "week", "month", "quarter", "year"]
ORGS = ["org-series-1", "org-series-2", "x.y:z_9"]
FIRST, LAST = datetime(2019, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
DAY = 86_400
# Longest span per interval that stays within 1,000 buckets (in every zone).
SPANS = {"hour": 41 * DAY, "day": 990 * DAY, "week": 18 * 365 * DAY}
SPANS |= {"month": 8 * 365 * DAY, "quarter": 8 * 365 * DAY, "year": 8 * 365 * DAY}
SERIES = f"{BASE_PATH}/series"


def at(text: str) -> int:
    return parse_instant(text)[1]


def transitions(name: str) -> list[int]:
    """The zone's offset changes between FIRST and LAST (probing every 6 h, then bisecting)."""
    tz, out = zone(name), []

    def offset(t: int) -> timedelta | None:
        return datetime.fromtimestamp(t, UTC).astimezone(tz).utcoffset()

    t, end = int(FIRST.timestamp()), int(LAST.timestamp())
    while t < end:
        if offset(t) != offset(t + 6 * 3600):
            lo, hi = t, t + 6 * 3600
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == offset(lo) else (lo, mid)
            out.append(hi)
        t += 6 * 3600
    return out


CHANGES = sorted({t for name in ZONES for t in transitions(name)})


def period_key(interval: str, name: str, second: int) -> tuple[Any, ...]:
    """The calendar interval of `second` in the zone, from its local time alone."""
    local = datetime.fromtimestamp(second, UTC).astimezone(zone(name))
    if interval == "hour":
        return (local.date(), local.hour, local.utcoffset())
    if interval == "day":
        return (local.date(),)
    if interval == "week":
        return tuple(local.isocalendar()[:2])
    if interval == "month":
        return (local.year, local.month)
    if interval == "quarter":
        return (local.year, (local.month - 1) // 3)
    return (local.year,)


@dataclass
class World:
    settings: Settings
    client: redis.Redis
    seconds: dict[str, list[int]]


def make_events(rng: random.Random, n: int) -> list[RecordCreated]:
    """Events spread over the years, a third within hours of a DST change, some in bursts."""
    span = int((LAST - FIRST).total_seconds())
    events = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.35:
            second = rng.choice(CHANGES) + rng.randrange(-3 * 3600, 3 * 3600)
        elif roll < 0.45:
            second = rng.choice(CHANGES) + rng.choice([-1, 0, 1, 1799, 1800, 3599, 3600])
        else:
            second = int(FIRST.timestamp()) + rng.randrange(span)
        moment = datetime.fromtimestamp(second, UTC) + timedelta(microseconds=rng.randrange(10**6))
        offset = timezone(timedelta(minutes=rng.choice([0, 60, -300, 345, 630])))
        events.append(
            RecordCreated(
                event_id=str(uuid.UUID(int=rng.getrandbits(128))),
                org_id=rng.choice(ORGS),
                record_id=f"rec-{i}",
                occurred_at=moment.astimezone(offset),
            )
        )
    return events


@pytest.fixture(scope="module")
def world(services: Services) -> Iterator[World]:
    """One topic and projection for the module, projected before the tests run."""
    settings = module_settings(services, "ser")
    ensure_topics(settings.kafka_bootstrap_servers, settings.record_events_topic, partitions=3)
    client = connect(settings, timeout=30)
    try:
        events = make_events(random.Random(1313), 6000)
        # The projector as a process of its own, as deployed: late in a long session an
        # in-process one shares kafka-python's threads with every client earlier modules left.
        projector = start_projector(settings)
        try:
            with Publisher(
                settings.kafka_bootstrap_servers, settings.record_events_topic
            ) as publisher:
                for event in events:
                    publisher.publish(event)
                for event in events[:300]:  # producer retries: counted once
                    publisher.publish(event)
                publisher.flush()
            try:
                wait_projected(settings, client)
            except TimeoutError as error:
                raise AssertionError(
                    f"{error}; projector said:\n{projector.output()[-4000:]}"
                ) from error
        finally:
            assert projector.stop() == 0, projector.output()[-3000:]
        seconds: dict[str, list[int]] = {}
        for event in events:
            seconds.setdefault(event.org_id, []).append(event.occurred_second)
        yield World(settings, client, seconds)
    finally:
        remove_module_world(settings, client)


@pytest.fixture
def app(world: World) -> Iterator[Flask]:
    app = create_app(world.settings)
    yield app
    app.extensions["period-record-counts"].redis.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def get_series(client: FlaskClient, path: str = SERIES, **query: str) -> Any:
    return client.get(f"{path}?{urlencode(query)}")


def brute(seconds: list[int], start: int, end: int) -> int:
    return sum(1 for s in seconds if start <= s <= end)


def random_triple(rng: random.Random) -> tuple[str, str, str, str]:
    """(tz, interval, start, end): starts near DST changes or anywhere, odd offsets, fractions."""
    name = rng.choice(ZONES)
    interval = rng.choice(INTERVALS)
    span = rng.choice([rng.randrange(1, 3 * DAY), rng.randrange(SPANS[interval])])
    if rng.random() < 0.6:
        start = rng.choice(CHANGES) - rng.randrange(span + 1)
    else:
        start = int(FIRST.timestamp()) + rng.randrange(int((LAST - FIRST).total_seconds()))
    end = start + span
    given = timezone(timedelta(minutes=rng.choice([0, 60, 120, -300, -240, 345, 630, 660])))
    fraction = timedelta(microseconds=rng.choice([0, 1, 999_999]))
    texts = [
        (datetime.fromtimestamp(t, UTC) + fraction).astimezone(given).isoformat()
        for t in (start, end)
    ]
    return name, interval, texts[0], texts[1]


def test_every_bucket_equals_brute_force_for_random_triples(
    world: World, client: FlaskClient
) -> None:
    rng = random.Random(2026)
    zones_seen: Counter[str] = Counter()
    crossing = 0
    for _ in range(400):
        name, interval, start_text, end_text = random_triple(rng)
        org = rng.choice(ORGS)
        response = get_series(
            client, org_id=org, start=start_text, end=end_text, interval=interval, tz=name
        )
        assert response.status_code == 200, response.json
        body = response.json
        assert SeriesSchema().validate(body) == {}
        start, end = at(start_text), at(end_text)
        assert (body["org_id"], body["interval"], body["tz"]) == (org, interval, name)
        assert body["range"] == {"start": format_utc(start), "end": format_utc(end)}
        seconds = world.seconds.get(org, [])
        bounds = [(at(b["start"]), at(b["end"])) for b in body["buckets"]]
        assert bounds[0][0] == start and bounds[-1][1] == end
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(bounds))
        counts = [b["record_count"] for b in body["buckets"]]
        assert counts == [brute(seconds, a, b) for a, b in bounds], (name, interval, start_text)
        # The buckets are the zone's intervals: keyed like each event, independently.
        keys = [period_key(interval, name, a) for a, _ in bounds]
        assert len(set(keys)) == len(keys)
        expected = Counter(period_key(interval, name, s) for s in seconds if start <= s <= end)
        assert {k: c for k, c in zip(keys, counts, strict=True) if c} == dict(expected)
        # Bounds are written in the zone's offset at that instant.
        tz = zone(name)
        for bucket in body["buckets"][:3]:
            for bound in (bucket["start"], bucket["end"]):
                stamp = datetime.fromisoformat(bound)
                assert stamp.utcoffset() == stamp.astimezone(tz).utcoffset()
        post = client.post(
            BASE_PATH, json={"org_id": org, "range": {"start": start_text, "end": end_text}}
        ).json
        assert body["record_count"] == sum(counts) == post["record_count"]
        assert body["is_complete"] == post["is_complete"]
        zones_seen[name] += 1
        crossing += any(start <= t <= end for t in CHANGES)
    assert set(zones_seen) == set(ZONES) and crossing >= 100


def test_a_year_in_oslo_per_month_and_per_day(world: World, client: FlaskClient) -> None:
    query = {"org_id": ORGS[0], "start": "2025-01-01T00:00:00+01:00"}
    query |= {"end": "2025-12-31T23:59:59+01:00", "tz": "Europe/Oslo"}
    months = get_series(client, interval="month", **query).json
    assert [b["start"][:7] for b in months["buckets"]] == [f"2025-{m:02d}" for m in range(1, 13)]
    assert months["buckets"][2]["end"] == "2025-03-31T23:59:59+02:00"
    assert months["buckets"][9]["end"] == "2025-10-31T23:59:59+01:00"
    days = get_series(client, interval="day", **query).json
    assert len(days["buckets"]) == 365
    assert (
        days["record_count"]
        == months["record_count"]
        == sum(1 for s in world.seconds[ORGS[0]] if at(query["start"]) <= s <= at(query["end"]))
    )
    assert days["is_complete"] is True


def test_defaults_to_utc_and_serves_the_doubled_alias(client: FlaskClient) -> None:
    query = {"org_id": ORGS[1], "start": "2024-02-28T12:00:00Z", "end": "2024-03-01T23:59:59Z"}
    body = get_series(client, interval="day", **query).json
    assert body["tz"] == "UTC"
    assert [b["start"] for b in body["buckets"]] == [
        "2024-02-28T12:00:00Z",
        "2024-02-29T00:00:00Z",
        "2024-03-01T00:00:00Z",
    ]
    alias = get_series(client, path=BASE_PATH + SERIES, interval="day", **query).json
    assert alias["buckets"] == body["buckets"]


def test_a_series_stores_nothing_and_a_future_range_is_not_complete(
    world: World, client: FlaskClient
) -> None:
    before = sorted(world.client.scan_iter(match=f"{world.settings.redis_key_prefix}:snapshot*"))
    future = format_utc(int(time.time()) + 7 * DAY)
    body = get_series(
        client, org_id=ORGS[0], start="2026-01-01T00:00:00Z", end=future, interval="quarter"
    ).json
    assert body["is_complete"] is False and body["buckets"][-1]["end"] == future
    after = sorted(world.client.scan_iter(match=f"{world.settings.redis_key_prefix}:snapshot*"))
    assert after == before
