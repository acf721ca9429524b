"""The app factory and what it wires up, with no Kafka or Redis running."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.bounds import BOUND_PATTERN, UTC_SECOND_PATTERN
from api.middleware import BASE_PATH, canonical_path
from api.service import EXTENSION
from config import Settings
from tests.contract import SNAPSHOT_KEYS

DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused at once
ID = "count-snapshot-" + "0" * 32


@pytest.fixture
def app() -> Flask:
    return create_app(replace(Settings.from_env({}), redis_url=DOWN, redis_key_prefix="factory"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_factory_uses_the_given_settings(app: Flask) -> None:
    components = app.extensions[EXTENSION]
    assert components.settings.redis_key_prefix == "factory"
    assert components.redis.connection_pool.connection_kwargs["port"] == 1
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024


def test_factory_reads_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", DOWN)
    monkeypatch.setenv("API_TOKEN", "from-env")
    monkeypatch.setenv("COUNT_GRACE_SECONDS", "7")
    app = create_app()
    assert app.extensions[EXTENSION].settings.count_grace_seconds == 7
    response = app.test_client().delete(f"{BASE_PATH}/{ID}")
    assert response.status_code == 401


def test_each_app_has_its_own_redis_client() -> None:
    settings = replace(Settings.from_env({}), redis_url=DOWN)
    first, second = create_app(settings), create_app(settings)
    assert first.extensions[EXTENSION].redis is not second.extensions[EXTENSION].redis


def test_healthz_touches_nothing(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "path", ["/readyz", BASE_PATH, f"{BASE_PATH}/{ID}", f"{BASE_PATH}{BASE_PATH}/{ID}"]
)
def test_redis_down_is_a_quick_503_with_retry_after(client: FlaskClient, path: str) -> None:
    started = time.monotonic()
    response = client.get(path)
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"].isdigit()
    assert response.json["status"] == 503


def test_openapi_documents_every_route_once(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    # The live stream and the series are documented by their own modules.
    assert set(doc["paths"]) - {BASE_PATH + "/stream", BASE_PATH + "/series"} == {
        BASE_PATH,
        BASE_PATH + "/{snapshot_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    assert not [path for path in doc["paths"] if path.count(BASE_PATH) > 1]  # alias undocumented
    assert set(doc["paths"][BASE_PATH]) == {"get", "post"}
    assert set(doc["paths"][BASE_PATH + "/series"]) == {"get"}
    item = doc["paths"][BASE_PATH + "/{snapshot_id}"]
    assert set(item) == {"parameters", "get", "put", "delete"}
    assert item["parameters"][0]["schema"]["pattern"] == "^count-snapshot-[0-9a-f]{32}$"
    problem = doc["components"]["responses"]["UNPROCESSABLE_ENTITY"]["content"]
    assert problem == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    required = doc["components"]["schemas"]["Snapshot"]["required"]
    assert set(required) == SNAPSHOT_KEYS


def test_openapi_states_the_rules_the_server_enforces(client: FlaskClient) -> None:
    """The constraints come from the schemas' fields (api/openapi.py), as JSON Schema keywords."""
    doc = client.get("/api/v1/openapi.json").json
    schemas = doc["components"]["schemas"]
    for bound in schemas["Range"]["properties"].values():
        assert bound["format"] == "date-time" and bound["pattern"] == BOUND_PATTERN
    for name in ("range_start", "range_end", "snapshot_at"):
        assert schemas["Snapshot"]["properties"][name]["pattern"] == UTC_SECOND_PATTERN
    org_id = schemas["CountRequest"]["properties"]["org_id"]
    assert (org_id["pattern"], org_id["minLength"], org_id["maxLength"]) == (
        "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        1,
        128,
    )
    assert schemas["UpdateRequest"]["additionalProperties"] is False
    assert schemas["UpdateRequest"]["required"] == ["range"]
    query = {p["name"]: p for p in doc["paths"][BASE_PATH]["get"]["parameters"]}
    page, limit = query["page"]["schema"], query["limit"]["schema"]
    assert (page["minimum"], page["maximum"], limit["minimum"], limit["maximum"]) == (
        1,
        2**31 - 1,
        1,
        100,
    )
    # `?org_id=&is_complete=` means "no filter": said with allowEmptyValue.
    assert all(parameter["allowEmptyValue"] is True for parameter in query.values())
    stream = {p["name"]: p for p in doc["paths"][BASE_PATH + "/stream"]["get"]["parameters"]}
    assert stream["id"]["schema"]["pattern"] == "^count-snapshot-[0-9a-f]{32}$"
    assert stream["start"]["schema"]["pattern"] == BOUND_PATTERN
    assert "allowEmptyValue" not in stream["start"]
    # Responses carrying a snapshot id link to the operations on it (schemathesis follows them).
    created = doc["paths"][BASE_PATH]["post"]["responses"]["201"]
    assert created["links"]["getCountSnapshot"]["parameters"] == {
        "snapshot_id": "$response.body#/id"
    }


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        (BASE_PATH, BASE_PATH),
        (BASE_PATH + "/", BASE_PATH),
        (BASE_PATH + BASE_PATH, BASE_PATH),
        (BASE_PATH + BASE_PATH + "/", BASE_PATH),
        (f"{BASE_PATH}{BASE_PATH}/{ID}", f"{BASE_PATH}/{ID}"),
        (f"{BASE_PATH}/{ID}/", f"{BASE_PATH}/{ID}"),
        (f"{BASE_PATH}{BASE_PATH}/stream", f"{BASE_PATH}/stream"),
        (f"{BASE_PATH}{BASE_PATH}{BASE_PATH}", f"{BASE_PATH}{BASE_PATH}"),  # stripped once only
        ("/healthz", "/healthz"),
        ("/api/v1/openapi.json", "/api/v1/openapi.json"),
        (BASE_PATH + "-other", BASE_PATH + "-other"),
    ],
)
def test_canonical_path(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", f"{BASE_PATH}/not-an-id", 404),
        ("PATCH", BASE_PATH, 405),
        ("DELETE", BASE_PATH, 405),
        ("POST", f"{BASE_PATH}/{ID}", 405),
        ("POST", "/healthz", 405),
    ],
)
def test_routing_errors_are_problems(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert set(response.json) == {"type", "title", "status", "detail"}
    if status == 405:
        assert "GET" in response.headers["Allow"]


def test_a_bug_is_a_problem_500_without_a_traceback(app: Flask) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
