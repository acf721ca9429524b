"""Bad requests: each gets its 4xx problem+json, and Redis is left exactly as it was.

The first table goes through the app (Flask's test client); the second is bytes on the wire to
the real server, for what gunicorn refuses before the app sees a request (api/gunicorn_conf.py).
"""

from __future__ import annotations

import io
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.middleware import BASE_PATH
from config import Settings
from events.redis_client import connect
from scripts.harness import delete_matching, free_port, start_api
from tests.conftest import Services, settings_for

ID = "{id}"  # replaced by the id of a snapshot that exists
OK_RANGE = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-31T23:59:59Z"}
OTHER_RANGE = {"start": "2026-02-01T00:00:00Z", "end": "2026-02-28T23:59:59Z"}
UNKNOWN_ID = "count-snapshot-" + "f" * 32
JSON = "application/json"


@dataclass(frozen=True)
class Bad:
    """One bad request and the status it must get; `says` must appear in the detail."""

    name: str
    method: str
    path: str
    status: int
    body: Any = None
    raw: bytes | None = None
    content_type: str | None = JSON
    says: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def count_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"org_id": "org-bufdir-42", "range": dict(OK_RANGE)}
    for key, value in changes.items():
        if key in ("start", "end"):
            body["range"][key] = value
        else:
            body[key] = value
    return body


def without(key: str) -> dict[str, Any]:
    body = count_body()
    del body[key]
    return body


C = BASE_PATH
SERIES_OK = {"org_id": "org-bufdir-42", "interval": "day", "tz": "Europe/Oslo", **OK_RANGE}


def series_path(**changes: str | None) -> str:
    """`GET /series` with the good query changed (None drops a parameter)."""
    query = {k: v for k, v in {**SERIES_OK, **changes}.items() if v is not None}
    return f"{C}/series?{urlencode(query)}"


SERIES_CASES: list[tuple[str, dict[str, str | None], str]] = [
    ("unknown zone", {"tz": "Europe/Atlantis"}, "tz must be an IANA time zone"),
    ("zone path traversal", {"tz": "../../../etc/passwd"}, "tz must be"),
    ("zone lower case", {"tz": "europe/oslo"}, "tz must be"),
    ("zone empty", {"tz": ""}, "tz must be"),
    ("zone offset", {"tz": "+01:00"}, "tz must be"),
    ("zone 5000 chars", {"tz": "Z" * 5000}, "tz must be"),
    ("zone NUL", {"tz": "UTC\x00"}, "tz must be"),
    ("unknown interval", {"interval": "fortnight"}, "interval must be one of"),
    ("interval upper case", {"interval": "DAY"}, "interval must be one of"),
    ("missing interval", {"interval": None}, "interval"),
    (
        "too many hours",
        {"interval": "hour", "start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
        "more than 1,000 hour intervals",
    ),
    (
        "too many days",
        {"start": "1970-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"},
        "more than 1,000 day intervals",
    ),
    (
        "reversed bounds",
        {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        "start must not be after end",
    ),
    ("naive start", {"start": "2026-01-01T00:00:00"}, "start has no UTC offset"),
    ("naive end", {"end": "2026-01-31T23:59:59"}, "end has no UTC offset"),
    ("date-only start", {"start": "2026-01-01"}, "start"),
    ("start year 10000", {"end": "10000-01-01T00:00:00Z"}, "after 9999-12-31"),
    ("start before 1970", {"start": "1969-12-31T23:00:00Z"}, "before 1970"),
    ("missing start", {"start": None}, "start"),
    ("missing org_id", {"org_id": None}, "org_id"),
    ("bad org_id", {"org_id": "org 42"}, "org_id"),
]
CASES = [
    # --- malformed JSON (400) ---
    Bad("broken json", "POST", C, 400, raw=b'{"org_id": '),
    Bad("empty body", "POST", C, 400, raw=b""),
    Bad("whitespace body", "POST", C, 400, raw=b"  \n"),
    Bad("NaN literal", "POST", C, 400, raw=b'{"org_id": NaN}'),
    Bad("not utf-8", "POST", C, 400, raw=b'{"org_id": "\xff\xfe"}'),
    Bad("nested 5000 deep", "POST", C, 400, raw=b"[" * 5000 + b"]" * 5000),
    Bad("trailing garbage", "POST", C, 400, raw=json.dumps(count_body()).encode() + b"}"),
    # --- JSON of the wrong shape or type (422) ---
    Bad("array body", "POST", C, 422, body=[count_body()]),
    Bad("string body", "POST", C, 422, body="org-bufdir-42"),
    Bad("null body", "POST", C, 422, raw=b"null"),
    Bad("org_id number", "POST", C, 422, body=count_body(org_id=42)),
    Bad("org_id null", "POST", C, 422, body=count_body(org_id=None)),
    Bad("org_id list", "POST", C, 422, body=count_body(org_id=["org"])),
    Bad("range string", "POST", C, 422, body=count_body(range="2026-01")),
    Bad("start number", "POST", C, 422, body=count_body(start=1767225600)),
    Bad("end bool", "POST", C, 422, body=count_body(end=True)),
    # --- invalid values (422) ---
    Bad("org_id with space", "POST", C, 422, body=count_body(org_id="org 42"), says="org_id"),
    Bad("org_id with slash", "POST", C, 422, body=count_body(org_id="org/42")),
    Bad("org_id with braces", "POST", C, 422, body=count_body(org_id="{org}")),
    Bad("org_id 2000 chars", "POST", C, 422, body=count_body(org_id="o" * 2000)),
    Bad("org_id 129 chars", "POST", C, 422, body=count_body(org_id="o" * 129)),
    Bad("org_id empty", "POST", C, 422, body=count_body(org_id="")),
    Bad("org_id leading dash", "POST", C, 422, body=count_body(org_id="-org")),
    Bad("org_id newline", "POST", C, 422, body=count_body(org_id="org\n")),
    Bad("org_id unicode", "POST", C, 422, body=count_body(org_id="ørg")),
    Bad("missing org_id", "POST", C, 422, body=without("org_id"), says="org_id"),
    Bad("missing range", "POST", C, 422, body=without("range"), says="range"),
    Bad("missing end", "POST", C, 422, body={"org_id": "o", "range": {"start": OK_RANGE["start"]}}),
    Bad(
        "naive start",
        "POST",
        C,
        422,
        body=count_body(start="2026-01-01T00:00:00"),
        says="start has no UTC offset",
    ),
    Bad(
        "naive end",
        "POST",
        C,
        422,
        body=count_body(end="2026-01-31T23:59:59"),
        says="end has no UTC offset",
    ),
    Bad("date only", "POST", C, 422, body=count_body(start="2026-01-01")),
    Bad(
        "start after end",
        "POST",
        C,
        422,
        body=count_body(start="2026-02-01T00:00:00Z"),
        says="start must not be after end",
    ),
    Bad(
        "year 10000",
        "POST",
        C,
        422,
        body=count_body(end="10000-01-01T00:00:00Z"),
        says="after 9999-12-31",
    ),
    Bad(
        "year 1969",
        "POST",
        C,
        422,
        body=count_body(start="1969-12-31T23:59:59Z"),
        says="before 1970",
    ),
    Bad("past 9999 via offset", "POST", C, 422, body=count_body(end="9999-12-31T23:59:59-01:00")),
    Bad("february 30", "POST", C, 422, body=count_body(start="2026-02-30T00:00:00Z")),
    Bad(
        "positive offset on 1970-01-01",
        "POST",
        C,
        422,
        body=count_body(start="1970-01-01T05:00:00+05:00"),
        says="write it in UTC: 1970-01-01T00:00:00Z",
    ),
    Bad(
        "negative offset on 9999-12-31",
        "POST",
        C,
        422,
        body=count_body(end="9999-12-31T12:00:00-01:00"),
        says="must not have a negative UTC offset",
    ),
    Bad("unknown field", "POST", C, 422, body=count_body(color="red"), says="color"),
    Bad(
        "unknown range field",
        "POST",
        C,
        422,
        body={"org_id": "o", "range": {**OK_RANGE, "tz": "UTC"}},
    ),
    # --- size and content type ---
    Bad("1 MiB body", "POST", C, 413, raw=b'{"org_id": "' + b"x" * 2**20 + b'"}'),
    Bad("64 KiB + 1 body", "POST", C, 413, raw=b" " * (64 * 1024 + 1)),
    Bad(
        "text/plain",
        "POST",
        C,
        415,
        raw=json.dumps(count_body()).encode(),
        content_type="text/plain",
    ),
    Bad(
        "no content type", "POST", C, 415, raw=json.dumps(count_body()).encode(), content_type=None
    ),
    Bad(
        "form encoded",
        "POST",
        C,
        415,
        raw=b"org_id=org-1",
        content_type="application/x-www-form-urlencoded",
    ),
    # --- malformed query (400) ---
    Bad("page=0", "GET", f"{C}?page=0", 400, content_type=None, says="page"),
    Bad("page=-1", "GET", f"{C}?page=-1", 400, content_type=None),
    Bad("page=abc", "GET", f"{C}?page=abc", 400, content_type=None),
    Bad("page too big", "GET", f"{C}?page=99999999999999999999", 400, content_type=None),
    Bad("page=+1", "GET", f"{C}?page=%2B1", 400, content_type=None),
    Bad("page=1_0", "GET", f"{C}?page=1_0", 400, content_type=None),
    Bad("limit with a space", "GET", f"{C}?limit=%2010", 400, content_type=None),
    Bad("limit=1000", "GET", f"{C}?limit=1000", 400, content_type=None, says="limit"),
    Bad("limit=0", "GET", f"{C}?limit=0", 400, content_type=None),
    Bad("is_complete=maybe", "GET", f"{C}?is_complete=maybe", 400, content_type=None),
    Bad("org_id filter with space", "GET", f"{C}?org_id=org%2042", 400, content_type=None),
    # --- series query (422) ---
    *(
        Bad(f"series {name}", "GET", series_path(**changes), 422, content_type=None, says=says)
        for name, changes, says in SERIES_CASES
    ),
    # --- ids: wrong form or unknown (404) ---
    Bad("id with ../", "GET", f"{C}/../{C}", 404, content_type=None),
    Bad("id ..%2F", "GET", f"{C}/..%2Fetc%2Fpasswd", 404, content_type=None),
    Bad("id %00", "GET", f"{C}/%00", 404, content_type=None),
    Bad("id with %00 suffix", "GET", f"{C}/{ID}%00", 404, content_type=None),
    Bad("contract example id", "GET", f"{C}/count-snapshot-001", 404, content_type=None),
    Bad("unknown id", "GET", f"{C}/{UNKNOWN_ID}", 404, content_type=None),
    Bad("put unknown id", "PUT", f"{C}/{UNKNOWN_ID}", 404, body={"range": OK_RANGE}),
    Bad("delete unknown id", "DELETE", f"{C}/{UNKNOWN_ID}", 404, content_type=None),
    Bad("delete %00", "DELETE", f"{C}/%00", 404, content_type=None),
    Bad("delete ../", "DELETE", f"{C}/..%2F{ID}", 404, content_type=None),
    Bad("deeper path", "GET", f"{C}/{ID}/extra", 404, content_type=None),
    # --- PUT on an existing snapshot ---
    Bad("put naive", "PUT", f"{C}/{ID}", 422, body={"range": {**OK_RANGE, "end": "2026-02-01"}}),
    Bad(
        "put start after end",
        "PUT",
        f"{C}/{ID}",
        422,
        body={"range": {"start": OK_RANGE["end"], "end": OK_RANGE["start"]}},
    ),
    Bad("put org_id", "PUT", f"{C}/{ID}", 422, body={"range": OK_RANGE, "org_id": "x"}),
    Bad("put empty object", "PUT", f"{C}/{ID}", 422, body={}),
    Bad("put broken json", "PUT", f"{C}/{ID}", 400, raw=b'{"range": {'),
    Bad("put text/plain", "PUT", f"{C}/{ID}", 415, raw=b"{}", content_type="text/plain"),
    Bad("put taken range", "PUT", f"{C}/{ID}", 409, body={"range": OTHER_RANGE}),
    # --- wrong methods (405) ---
    Bad("patch collection", "PATCH", C, 405, body=count_body()),
    Bad("delete collection", "DELETE", C, 405, content_type=None),
    Bad("put collection", "PUT", C, 405, body={"range": OK_RANGE}),
    Bad("post to an id", "POST", f"{C}/{ID}", 405, body=count_body()),
    Bad("patch an id", "PATCH", f"{C}/{ID}", 405, body={"range": OK_RANGE}),
    # --- the doubled alias gets the same answers ---
    Bad("alias broken json", "POST", f"{C}{C}", 400, raw=b"{"),
    Bad("alias naive", "POST", f"{C}{C}/", 422, body=count_body(start="2026-01-01T00:00:00")),
    Bad("alias unknown id", "GET", f"{C}{C}/{UNKNOWN_ID}", 404, content_type=None),
    Bad("unknown route", "GET", "/api/v1/other", 404, content_type=None),
]


def redis_state(client: redis.Redis, prefix: str) -> dict[bytes, tuple[bytes, bytes | None, int]]:
    """Every key of the test's prefix with its type, serialized value and TTL."""
    return {
        key: (client.type(key), client.dump(key), client.pttl(key))
        for key in client.scan_iter(match=f"{prefix}:*", count=1000)
    }


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    app = create_app(settings)
    yield app
    app.extensions["period-record-counts"].redis.close()


@pytest.fixture
def snapshot_id(app: Flask) -> str:
    """A snapshot exists (and another holding OTHER_RANGE), so bad PUTs have a target."""
    client = app.test_client()
    other = client.post(BASE_PATH, json={"org_id": "org-bufdir-42", "range": OTHER_RANGE})
    assert other.status_code == 201
    created = client.post(BASE_PATH, json=count_body())
    assert created.status_code == 201
    return created.json["id"]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_request_is_a_problem_and_changes_nothing(
    app: Flask, snapshot_id: str, redis_client: redis.Redis, key_prefix: str, case: Bad
) -> None:
    client: FlaskClient = app.test_client()
    before = redis_state(redis_client, key_prefix)
    assert before, "the fixture's snapshots should be in Redis"
    kwargs: dict[str, Any] = {"headers": case.headers}
    if case.raw is not None:
        kwargs["data"] = case.raw
    elif case.body is not None:
        kwargs["data"] = json.dumps(case.body)
    if case.content_type is not None:
        kwargs["content_type"] = case.content_type
    response = client.open(case.path.replace(ID, snapshot_id), method=case.method, **kwargs)

    assert response.status_code == case.status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    problem = response.json
    assert (
        {"type", "title", "status", "detail"}
        <= set(problem)
        <= {"type", "title", "status", "detail", "errors"}
    )
    assert problem["status"] == case.status
    assert case.says in problem["detail"]
    if case.status == 422:
        assert problem["errors"] and all(
            isinstance(texts, list) and texts for texts in problem["errors"].values()
        )
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "<html" not in text.lower()
    assert redis_state(redis_client, key_prefix) == before


def test_chunked_body_over_the_limit_is_413(app: Flask, snapshot_id: str) -> None:
    """A body without Content-Length is still capped at 64 KiB while it is read."""
    big = b'{"org_id": "' + b"x" * 2**20 + b'"}'
    response = app.test_client().post(
        BASE_PATH,
        input_stream=io.BytesIO(big),
        content_type=JSON,
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


# --- what gunicorn refuses before the app sees it: the real server, bytes on the wire ---


@dataclass(frozen=True)
class WireBad:
    """Raw request bytes the HTTP layer refuses; `{id}` is a snapshot that exists."""

    name: str
    request: bytes
    status: int
    says: str = ""


def wire_request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    """An HTTP/1.1 request as bytes: the given header lines, Host and the body's length."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def uri_of(length: int, path: str) -> str:
    """`path` padded with an ignored query parameter to exactly `length` characters."""
    padding = length - len(path) - len("?pad=")
    return f"{path}?pad={'x' * padding}"


# Each would change Redis (a new snapshot, a recount, a delete) if it got through.
BODY = json.dumps(count_body(range=OTHER_RANGE | {"end": "2026-03-31T23:59:59Z"})).encode()
PUT_BODY = json.dumps(
    {"range": {"start": "2025-01-01T00:00:00Z", "end": "2025-01-31T23:59:59Z"}}
).encode()
WIRE_CASES = [
    WireBad("URI of 5,000 characters", wire_request("POST", uri_of(5000, C), body=BODY), 414),
    WireBad("URI of 20,000 characters", wire_request("DELETE", uri_of(20_000, f"{C}/{ID}")), 414),
    WireBad(
        "20 KiB header",
        wire_request("POST", C, "X-Padding: " + "x" * 20 * 1024, body=BODY),
        431,
        says="too large",
    ),
    WireBad(
        "200 headers",
        wire_request("PUT", f"{C}/{ID}", *(f"X-H{n}: v" for n in range(200)), body=PUT_BODY),
        431,
    ),
    WireBad("garbage request line", b"\x16\x03\x01\x00\xa5garbage\r\n\r\n", 400, says="not valid"),
    WireBad("request line without a version", f"DELETE {C}/{ID}\r\n\r\n".encode(), 400),
    WireBad("HTTP/9.9", wire_request("DELETE", f"{C}/{ID}").replace(b"HTTP/1.1", b"HTTP/9.9"), 400),
    WireBad("header name with a space", wire_request("POST", C, "Bad Name: v", body=BODY), 400),
    WireBad(
        "Content-Length not a number",
        wire_request("POST", C, "Content-Type: application/json", "Content-Length: 12a") + BODY,
        400,
    ),
    WireBad(
        "chunked and Content-Length",
        wire_request("POST", C, "Transfer-Encoding: chunked", body=BODY),
        400,
    ),
    WireBad(
        "chunk size not hex",
        wire_request("POST", C, "Content-Type: application/json", "Transfer-Encoding: chunked")
        + b"zz\r\n{}\r\n0\r\n\r\n",
        400,
    ),
    WireBad(
        "Transfer-Encoding br",
        wire_request("POST", C, "Transfer-Encoding: br, chunked") + b"2\r\n{}\r\n0\r\n\r\n",
        501,
        says="'br, chunked' is not supported",
    ),
]


@dataclass(frozen=True)
class WireResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def send_raw(address: tuple[str, int], request: bytes) -> WireResponse:
    """Send `request`, read the response until the server closes (a reset fails the test)."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return WireResponse(int(status_line.split()[1]), headers, body)


@pytest.fixture(scope="module")
def wire_api(services: Services) -> Iterator[tuple[tuple[str, int], redis.Redis, str, str]]:
    """The real server (gunicorn, `python -m api`) on its own prefix, with a snapshot in Redis."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    settings = replace(settings_for(services, prefix, "record-events-unused"), port=free_port())
    client = connect(settings, timeout=30)
    proc = start_api(settings)
    try:
        address = ("127.0.0.1", settings.port)
        created = requests.post(
            f"http://127.0.0.1:{settings.port}{C}", json=count_body(), timeout=10
        )
        assert created.status_code == 201, created.text
        yield address, client, prefix, created.json()["id"]
    finally:
        proc.stop()
        delete_matching(client, f"{prefix}:*")
        client.close()


def test_the_wire_table_covers_the_issue() -> None:
    assert {case.status for case in WIRE_CASES} >= {400, 414, 431}
    assert len({case.name for case in WIRE_CASES}) == len(WIRE_CASES)


@pytest.mark.parametrize("case", WIRE_CASES, ids=[case.name for case in WIRE_CASES])
def test_a_request_gunicorn_refuses_is_a_problem_and_changes_nothing(
    wire_api: tuple[tuple[str, int], redis.Redis, str, str], case: WireBad
) -> None:
    address, client, prefix, snapshot_id = wire_api
    before = redis_state(client, prefix)
    assert before, "the fixture's snapshot should be in Redis"

    response = send_raw(address, case.request.replace(ID.encode(), snapshot_id.encode()))

    assert response.status == case.status, response.body[:300]
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["content-length"]) == len(response.body)
    problem = json.loads(response.body)
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["status"] == case.status
    assert problem["title"] == HTTPStatus(case.status).phrase
    assert case.says in problem["detail"]
    assert b"<html" not in response.body.lower()
    assert redis_state(client, prefix) == before
