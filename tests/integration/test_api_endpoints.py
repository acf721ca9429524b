"""Every endpoint's success path, with events through the real broker and projector.

Response keys must equal the contract's example keys exactly; counts must equal a brute-force
count over the events published (the oracle).
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.middleware import BASE_PATH
from config import Settings
from events.publisher import Publisher
from events.redis_client import Client, connect
from events.schema import MAX_EPOCH, RecordCreated, format_utc, parse_instant
from events.topics import ensure_topics
from projector import keys
from scripts.harness import delete_matching
from tests import contract
from tests.conftest import Services
from tests.integration.projection import (
    module_settings,
    oracle_count,
    remove_module_world,
    running_projector,
    wait_projected,
)

# The contract's example bodies, key for key; SPEC adds the snapshot's `id` to POST's.
POST_KEYS = contract.POST_KEYS | {"id"}
SNAPSHOT_KEYS, DELETE_KEYS = contract.SNAPSHOT_KEYS, contract.DELETE_KEYS
LIST_KEYS, PAGINATION_KEYS = contract.LIST_KEYS, contract.PAGINATION_KEYS
ORGS = ["org-bufdir-42", "org-a", "x.y:z_1-2"]
BURST = datetime(2025, 6, 15, 12, 0, 0, tzinfo=UTC)


@dataclass
class World:
    """Settings of the module's topic/prefix, the events published, a publisher, a projector."""

    settings: Settings
    client: Client
    seconds: dict[str, list[int]]
    publisher: Publisher

    def publish(self, events: list[RecordCreated]) -> None:
        for event in events:
            self.publisher.publish(event)
            self.seconds.setdefault(event.org_id, []).append(event.occurred_second)
        self.publisher.flush()
        wait_projected(self.settings, self.client)

    def oracle(self, org_id: str, start: str, end: str) -> int:
        return oracle_count(
            self.seconds.get(org_id, []), parse_instant(start)[1], parse_instant(end)[1]
        )


def make_events(rng: random.Random, n: int) -> list[RecordCreated]:
    """Events over 2015..2026, a burst inside one second, and some at the epoch's edges."""
    lo = datetime(2015, 1, 1, tzinfo=UTC)
    span = int((datetime(2026, 1, 1, tzinfo=UTC) - lo).total_seconds())
    moments = [lo + timedelta(seconds=rng.randrange(span)) for _ in range(n)]
    moments += [BURST + timedelta(microseconds=rng.randrange(10**6)) for _ in range(25)]
    moments += [datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]
    return [
        RecordCreated(
            event_id=str(uuid.UUID(int=rng.getrandbits(128))),
            org_id=rng.choice(ORGS),
            record_id=f"rec-{i}",
            occurred_at=moment,
        )
        for i, moment in enumerate(moments)
    ]


@pytest.fixture(scope="module")
def world(services: Services) -> Iterator[World]:
    """One topic and projection for the module: ~600 events, projected before the tests run."""
    settings = module_settings(services, "api")
    ensure_topics(settings.kafka_bootstrap_servers, settings.record_events_topic, partitions=3)
    client = connect(settings, timeout=30)
    try:
        with (
            Publisher(settings.kafka_bootstrap_servers, settings.record_events_topic) as publisher,
            running_projector(settings),
        ):
            world = World(settings, client, {}, publisher)
            events = make_events(random.Random(4), 600)
            world.publish(events)
            # A producer retry of the same events is counted once.
            for event in events[:50]:
                publisher.publish(event)
            publisher.flush()
            wait_projected(settings, client)
            yield world
    finally:
        remove_module_world(settings, client)


@pytest.fixture
def app(world: World) -> Iterator[Flask]:
    """A fresh app on the module's projection, with no snapshots yet."""
    prefix = world.settings.redis_key_prefix
    delete_matching(world.client, f"{keys.snapshots_key(prefix)}*")
    app = create_app(world.settings)
    yield app
    app.extensions["period-record-counts"].redis.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def post(client: FlaskClient, org_id: str, start: str, end: str, path: str = BASE_PATH):
    return client.post(path, json={"org_id": org_id, "range": {"start": start, "end": end}})


def assert_recent(stamp: str, slack: float = 10.0) -> None:
    assert stamp.endswith("Z") and len(stamp) == 20
    assert abs(parse_instant(stamp)[1] - time.time()) <= slack


# Ranges of every span, with offsets and fractions (truncated to the second by the service).
RANGES = [
    ("2025-06-15T12:00:00Z", "2025-06-15T12:00:00Z"),  # 1 s: the burst
    ("2025-06-15T12:00:00.999Z", "2025-06-15T12:00:00.001Z"),  # same second once truncated
    ("2025-06-15T14:00:00+02:00", "2025-06-15T14:00:00.5+02:00"),  # the burst, in +02:00
    ("2025-06-15T12:00:01Z", "2025-06-15T13:00:00Z"),  # just after the burst
    ("2024-02-29T00:00:00Z", "2024-02-29T23:59:59.999Z"),  # a day
    ("2024-01-01T00:00:00Z", "2024-03-31T23:59:59Z"),  # 90 days
    ("2022-12-31T19:00:00-05:00", "2023-12-31T18:59:59-05:00"),  # a year, in -05:00
    ("2015-01-01T00:00:00Z", "2024-12-31T23:59:59Z"),  # ten years
    ("1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),  # everything
    ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),  # the first second
    ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999Z"),  # the last second
    ("2030-01-01T00:00:00Z", "2031-01-01T00:00:00Z"),  # nothing there
]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_post_counts_equal_the_oracle(world: World, client: FlaskClient, start: str, end: str):
    for org_id in ORGS:
        response = post(client, org_id, start, end)
        assert response.status_code == 201, response.json
        assert set(response.json) == POST_KEYS
        assert response.json["record_count"] == world.oracle(org_id, start, end)


def test_post_creates_then_refreshes(world: World, client: FlaskClient) -> None:
    start, end = "2024-01-01T01:00:00+01:00", "2024-12-31T23:59:59.750Z"
    created = post(client, "org-a", start, end)
    assert created.status_code == 201
    body = created.json
    assert set(body) == POST_KEYS and set(body["range"]) == {"start", "end"}
    assert body["org_id"] == "org-a"
    # Bounds come back in UTC, at whole seconds.
    assert body["range"] == {"start": "2024-01-01T00:00:00Z", "end": "2024-12-31T23:59:59Z"}
    assert body["record_count"] == world.oracle("org-a", start, end) > 0
    assert body["is_complete"] is True  # ended long before the projection caught up
    assert_recent(body["computed_at"])
    assert created.headers["Location"] == f"{BASE_PATH}/{body['id']}"
    assert created.mimetype == "application/json"

    refreshed = post(client, "org-a", "2024-01-01T00:00:00Z", "2024-12-31T23:59:59Z")
    assert refreshed.status_code == 200
    assert "Location" not in refreshed.headers
    assert refreshed.json["id"] == body["id"]
    assert refreshed.json["computed_at"] >= body["computed_at"]


def test_a_range_ending_in_the_future_is_not_complete(client: FlaskClient) -> None:
    future = format_utc(int(time.time()) + 3600)
    body = post(client, "org-a", "2025-01-01T00:00:00Z", future).json
    assert body["is_complete"] is False
    just_ended = format_utc(int(time.time()) - 5)  # within COUNT_GRACE_SECONDS of now
    assert post(client, "org-a", "2025-01-01T00:00:00Z", just_ended).json["is_complete"] is False


def test_get_returns_the_snapshot(world: World, client: FlaskClient) -> None:
    created = post(client, "org-bufdir-42", "2020-01-01T00:00:00Z", "2020-12-31T23:59:59Z").json
    response = client.get(f"{BASE_PATH}/{created['id']}")
    assert response.status_code == 200
    snapshot = response.json
    assert set(snapshot) == SNAPSHOT_KEYS
    assert snapshot == {
        "id": created["id"],
        "org_id": "org-bufdir-42",
        "range_start": "2020-01-01T00:00:00Z",
        "range_end": "2020-12-31T23:59:59Z",
        "record_count": world.oracle(
            "org-bufdir-42", "2020-01-01T00:00:00Z", "2020-12-31T23:59:59Z"
        ),
        "is_complete": True,
        "snapshot_at": created["computed_at"],
    }


def test_list_is_newest_first_paginated_and_filtered(client: FlaskClient) -> None:
    made = []
    for year in range(2016, 2023):
        org_id = ORGS[year % 2]
        made.append(post(client, org_id, f"{year}-01-01T00:00:00Z", f"{year}-12-31T23:59:59Z").json)
        time.sleep(0.002)  # distinct snapshot times, so "newest first" has one right answer
    made.append(post(client, "org-a", "2025-01-01T00:00:00Z", "2999-01-01T00:00:00Z").json)
    newest_first = [body["id"] for body in reversed(made)]

    whole = client.get(BASE_PATH).json
    assert set(whole) == LIST_KEYS and set(whole["pagination"]) == PAGINATION_KEYS
    assert whole["pagination"] == {"page": 1, "limit": 20, "total": 8}
    assert [item["id"] for item in whole["data"]] == newest_first
    assert all(set(item) == SNAPSHOT_KEYS for item in whole["data"])

    pages = [client.get(f"{BASE_PATH}?page={p}&limit=3").json for p in (1, 2, 3, 4)]
    assert [item["id"] for page in pages for item in page["data"]] == newest_first
    assert [len(page["data"]) for page in pages] == [3, 3, 2, 0]
    assert pages[3]["pagination"] == {"page": 4, "limit": 3, "total": 8}  # past the end

    org_a = client.get(f"{BASE_PATH}?org_id=org-a&limit=100").json
    assert [item["id"] for item in org_a["data"]] == [
        body["id"] for body in reversed(made) if body["org_id"] == "org-a"
    ]
    assert org_a["pagination"]["total"] == 4
    incomplete = client.get(f"{BASE_PATH}?is_complete=false").json
    assert [item["id"] for item in incomplete["data"]] == [made[-1]["id"]]
    complete_a = client.get(f"{BASE_PATH}?org_id=org-a&is_complete=true").json
    assert complete_a["pagination"]["total"] == 3
    assert client.get(f"{BASE_PATH}?org_id=&is_complete=&page=&limit=").json == whole
    assert client.get(f"{BASE_PATH}?org_id=nobody").json["pagination"]["total"] == 0


def test_put_recounts_over_a_new_range(world: World, client: FlaskClient) -> None:
    first = post(client, "org-a", "2019-01-01T00:00:00Z", "2019-12-31T23:59:59Z").json
    start, end = "2021-01-01T00:00:00+03:00", "2021-06-30T23:59:59.9+03:00"
    response = client.put(
        f"{BASE_PATH}/{first['id']}", json={"range": {"start": start, "end": end}}
    )
    assert response.status_code == 200
    body = response.json
    assert set(body) == SNAPSHOT_KEYS
    assert (body["id"], body["org_id"]) == (first["id"], "org-a")
    assert (body["range_start"], body["range_end"]) == (
        "2020-12-31T21:00:00Z",
        "2021-06-30T20:59:59Z",
    )
    assert body["record_count"] == world.oracle("org-a", start, end)
    assert body["snapshot_at"] >= first["computed_at"]
    assert client.get(f"{BASE_PATH}/{first['id']}").json == body
    # The old range is free again; the new one is held.
    again = post(client, "org-a", "2019-01-01T00:00:00Z", "2019-12-31T23:59:59Z")
    assert again.status_code == 201 and again.json["id"] != first["id"]
    assert post(client, "org-a", start, end).json["id"] == first["id"]


def test_put_onto_another_snapshots_range_is_409(client: FlaskClient) -> None:
    one = post(client, "org-a", "2019-01-01T00:00:00Z", "2019-12-31T23:59:59Z").json
    two = post(client, "org-a", "2020-01-01T00:00:00Z", "2020-12-31T23:59:59Z").json
    other_org = post(client, "org-bufdir-42", "2018-01-01T00:00:00Z", "2018-12-31T23:59:59Z")
    taken = {"range": {"start": "2020-01-01T00:00:00Z", "end": "2020-12-31T23:59:59Z"}}
    conflict = client.put(f"{BASE_PATH}/{one['id']}", json=taken)
    assert conflict.status_code == 409
    assert conflict.mimetype == "application/problem+json"
    assert two["id"] in conflict.json["detail"]
    # Its own range, and another org's range, are no conflict.
    own = {"range": {"start": "2019-01-01T00:00:00Z", "end": "2019-12-31T23:59:59Z"}}
    assert client.put(f"{BASE_PATH}/{one['id']}", json=own).status_code == 200
    theirs = {"range": {"start": "2018-01-01T00:00:00Z", "end": "2018-12-31T23:59:59Z"}}
    assert other_org.status_code == 201
    assert client.put(f"{BASE_PATH}/{one['id']}", json=theirs).status_code == 200


def test_delete_removes_the_snapshot_everywhere(client: FlaskClient) -> None:
    keep = post(client, "org-a", "2017-01-01T00:00:00Z", "2017-12-31T23:59:59Z").json
    gone = post(client, "org-a", "2018-01-01T00:00:00Z", "2018-12-31T23:59:59Z").json
    response = client.delete(f"{BASE_PATH}/{gone['id']}")
    assert response.status_code == 200
    assert response.json == {"deleted": True, "id": gone["id"]}
    assert set(response.json) == DELETE_KEYS
    assert client.get(f"{BASE_PATH}/{gone['id']}").status_code == 404
    assert client.delete(f"{BASE_PATH}/{gone['id']}").status_code == 404
    listed = client.get(f"{BASE_PATH}?org_id=org-a&is_complete=true").json
    assert [item["id"] for item in listed["data"]] == [keep["id"]]
    assert listed["pagination"]["total"] == 1
    recreated = post(client, "org-a", "2018-01-01T00:00:00Z", "2018-12-31T23:59:59Z")
    assert recreated.status_code == 201 and recreated.json["id"] != gone["id"]


def test_concurrent_posts_of_one_range_make_one_snapshot(app: Flask) -> None:
    statuses: list[int] = []
    ids: set[str] = set()
    barrier = threading.Barrier(16)

    def worker() -> None:
        client = app.test_client()
        barrier.wait()
        response = post(client, "org-a", "2016-01-01T00:00:00Z", "2016-12-31T23:59:59Z")
        statuses.append(response.status_code)
        ids.add(response.json["id"])

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 15 + [201]
    assert len(ids) == 1
    assert app.test_client().get(BASE_PATH).json["pagination"]["total"] == 1


def test_a_snapshot_stays_frozen_until_refreshed(world: World, client: FlaskClient) -> None:
    start, end = "2014-06-01T00:00:00Z", "2014-06-30T23:59:59Z"
    created = post(client, "org-a", start, end).json
    assert created["record_count"] == 0
    late = [
        RecordCreated(str(uuid.uuid4()), "org-a", f"late-{i}", datetime(2014, 6, 2, tzinfo=UTC))
        for i in range(3)
    ]
    world.publish(late)
    assert client.get(f"{BASE_PATH}/{created['id']}").json["record_count"] == 0
    refreshed = post(client, "org-a", start, end)
    assert refreshed.status_code == 200 and refreshed.json["record_count"] == 3


def test_the_doubled_path_alias_serves_every_route(world: World, client: FlaskClient) -> None:
    alias = BASE_PATH + BASE_PATH
    created = post(client, "org-a", "2015-01-01T00:00:00Z", "2015-12-31T23:59:59Z", path=alias)
    assert created.status_code == 201
    item = f"{alias}/{created.json['id']}"
    assert client.get(alias).json["pagination"]["total"] == 1
    assert client.get(item).json["id"] == created.json["id"]
    new_range = {"range": {"start": "2016-01-01T00:00:00Z", "end": "2016-12-31T23:59:59Z"}}
    assert client.put(item, json=new_range).status_code == 200
    assert client.delete(item).json == {"deleted": True, "id": created.json["id"]}
    assert client.get(f"{BASE_PATH}/").json["pagination"]["total"] == 0


def test_snapshots_outlive_the_app(world: World, client: FlaskClient) -> None:
    created = post(client, "org-a", "2015-01-01T00:00:00Z", "2015-12-31T23:59:59Z").json
    restarted = create_app(world.settings)
    snapshot = restarted.test_client().get(f"{BASE_PATH}/{created['id']}").json
    assert snapshot["record_count"] == created["record_count"]
    restarted.extensions["period-record-counts"].redis.close()


def test_a_chunked_body_under_the_limit_is_read(client: FlaskClient) -> None:
    body = {
        "org_id": "org-a",
        "range": {"start": "2015-01-01T00:00:00Z", "end": "2015-01-02T00:00:00Z"},
    }
    response = client.post(
        BASE_PATH,
        input_stream=io.BytesIO(json.dumps(body).encode()),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 201


def test_readyz_reports_the_projections_progress(client: FlaskClient) -> None:
    body = client.get("/readyz").json
    assert set(body) == {
        "status",
        "caught_up_at",
        "lag_seconds",
        "generation",
        "rebuild",
        "listpack",
    }
    assert body["status"] == "ready"
    # The test Redis is configured as the layout needs (scripts/servers.py).
    assert body["listpack"]["ok"] is True
    assert body["listpack"]["config"]["hash-max-listpack-entries"] >= keys.SPLIT_AT
    assert body["generation"] == 1 and body["rebuild"] is None  # no rebuild ever ran
    assert_recent(body["caught_up_at"], slack=120)
    assert 0 <= body["lag_seconds"] < 120


def test_metrics_count_requests_by_route_template(client: FlaskClient) -> None:
    created = post(client, "org-a", "2015-01-01T00:00:00Z", "2015-01-02T00:00:00Z").json
    client.get(f"{BASE_PATH}/{created['id']}")
    text = client.get("/metrics").get_data(as_text=True)
    route = f'route="{BASE_PATH}/<snapshot_id:snapshot_id>"'
    assert any(
        line.startswith("prc_api_request_duration_seconds_count")
        and route in line
        and 'method="GET"' in line
        and 'status="200"' in line
        for line in text.splitlines()
    )
    assert created["id"] not in text  # ids never become label values


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_whole_range_counts_every_distinct_event(world: World, client: FlaskClient) -> None:
    for org_id in ORGS:
        body = post(client, org_id, format_utc(0), format_utc(MAX_EPOCH)).json
        assert body["record_count"] == len(world.seconds[org_id])
