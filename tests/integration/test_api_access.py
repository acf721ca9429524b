"""API_TOKEN guards the writes; CORS_ORIGINS opens the API to listed browser origins only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from flask import Flask

from api import create_app
from api.middleware import BASE_PATH
from config import Settings

TOKEN = "s3cret-token"
BODY = {
    "org_id": "org-bufdir-42",
    "range": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-31T23:59:59Z"},
}
NEW_RANGE = {"range": {"start": "2026-02-01T00:00:00Z", "end": "2026-02-28T23:59:59Z"}}
ALLOWED = "https://reports.example"


def build(settings: Settings, **changes: object) -> Iterator[Flask]:
    app = create_app(replace(settings, **changes))
    yield app
    app.extensions["period-record-counts"].redis.close()


@pytest.fixture
def guarded(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    yield from build(settings, api_token=TOKEN)


@pytest.fixture
def open_app(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    yield from build(settings)


@pytest.fixture
def cors_app(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    yield from build(settings, cors_origins=(ALLOWED, "https://other.example"))


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_writes_without_the_token_are_401(guarded: Flask, authorization: str | None) -> None:
    client = guarded.test_client()
    headers = {} if authorization is None else {"Authorization": authorization}
    some_id = "count-snapshot-" + "0" * 32
    for response in (
        client.post(BASE_PATH, json=BODY, headers=headers),
        client.put(f"{BASE_PATH}/{some_id}", json=NEW_RANGE, headers=headers),
        client.delete(f"{BASE_PATH}/{some_id}", headers=headers),
    ):
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_token_opens_every_write_and_reads_stay_public(guarded: Flask) -> None:
    client = guarded.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    created = client.post(BASE_PATH, json=BODY, headers=auth)
    assert created.status_code == 201
    snapshot = created.headers["Location"]
    assert client.get(snapshot).status_code == 200
    assert client.get(BASE_PATH).json["pagination"]["total"] == 1
    assert client.put(snapshot, json=NEW_RANGE, headers=auth).status_code == 200
    assert client.delete(snapshot, headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_token_check_comes_before_body_checks(guarded: Flask) -> None:
    """An unauthenticated client learns nothing about what its body would have done."""
    response = guarded.test_client().post(BASE_PATH, data="{", content_type="text/plain")
    assert response.status_code == 401


def test_without_api_token_writes_are_open(open_app: Flask) -> None:
    assert open_app.test_client().post(BASE_PATH, json=BODY).status_code == 201


def test_without_cors_origins_there_are_no_cors_headers(open_app: Flask) -> None:
    client = open_app.test_client()
    response = client.get(BASE_PATH, headers={"Origin": ALLOWED})
    preflight = client.options(
        BASE_PATH, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    )
    for answer in (response, preflight):
        assert not [k for k, _ in answer.headers.items() if k.lower().startswith("access-control")]


def test_preflight_for_a_listed_origin(cors_app: Flask) -> None:
    response = cors_app.test_client().options(
        BASE_PATH,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "content-type", "last-event-id"} <= allowed
    assert "Origin" in response.headers["Vary"]


def test_simple_and_error_responses_carry_cors_for_listed_origins(cors_app: Flask) -> None:
    client = cors_app.test_client()
    ok = client.post(BASE_PATH, json=BODY, headers={"Origin": ALLOWED})
    bad = client.post(BASE_PATH, json={"org_id": "x y"}, headers={"Origin": ALLOWED})
    missing = client.get(f"{BASE_PATH}/nope", headers={"Origin": ALLOWED})
    for response, status in ((ok, 201), (bad, 422), (missing, 404)):
        assert response.status_code == status
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "Location" in response.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("origin", ["https://evil.example", "https://reports.example.evil", "null"])
def test_unlisted_origins_get_no_cors(cors_app: Flask, origin: str) -> None:
    client = cors_app.test_client()
    response = client.get(BASE_PATH, headers={"Origin": origin})
    preflight = client.options(
        BASE_PATH, headers={"Origin": origin, "Access-Control-Request-Method": "DELETE"}
    )
    for answer in (response, preflight):
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "Access-Control-Allow-Methods" not in answer.headers


def test_preflight_needs_no_token_even_when_writes_do(settings: Settings) -> None:
    for app in build(settings, api_token=TOKEN, cors_origins=(ALLOWED,)):
        response = app.test_client().options(
            f"{BASE_PATH}/count-snapshot-{'0' * 32}",
            headers={"Origin": ALLOWED, "Access-Control-Request-Method": "DELETE"},
        )
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
