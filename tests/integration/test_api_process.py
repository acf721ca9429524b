"""`python -m api` as a real process: gunicorn with gevent workers, JSON logs, clean SIGTERM."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from api.middleware import BASE_PATH
from config import Settings
from scripts.harness import Proc, free_port, start_api

BODY = {
    "org_id": "org-bufdir-42",
    "range": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-31T23:59:59Z"},
}


@pytest.fixture
def api(settings: Settings, redis_client: redis.Redis) -> Iterator[tuple[Proc, str]]:
    settings = replace(settings, port=free_port(), web_concurrency=2)
    proc = start_api(settings)
    try:
        yield proc, f"127.0.0.1:{settings.port}"
    finally:
        if proc.alive():
            proc.kill()


def request(address: str, method: str, path: str, body: bytes | None = None, **headers: str):
    connection = http.client.HTTPConnection(address, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def healthz_count(address: str) -> float:
    """Requests to /healthz so far, as /metrics reports them."""
    metrics = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
    counts = re.findall(
        r'prc_api_request_duration_seconds_count\{[^}]*route="/healthz"[^}]*\} ([0-9.]+)', metrics
    )
    return sum(float(count) for count in counts)


def test_serves_metrics_of_all_workers_and_stops_cleanly(api: tuple[Proc, str]) -> None:
    proc, address = api
    status, headers, _ = request(
        address,
        "POST",
        BASE_PATH,
        json.dumps(BODY).encode(),
        **{"Content-Type": "application/json"},
    )
    assert status == 201 and headers["Location"].startswith(BASE_PATH)
    before = healthz_count(address)
    for _ in range(40):  # fresh connections: spread over both workers
        assert request(address, "GET", "/healthz")[0] == 200
    assert healthz_count(address) == before + 40  # summed over every worker's files
    metrics = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
    assert "python_gc_objects_collected_total" not in metrics  # the multiprocess registry

    started = time.monotonic()
    assert proc.stop(timeout=30) == 0
    assert time.monotonic() - started < 15
    lines = [line for line in proc.output().splitlines() if line.strip()]
    assert lines and all(json.loads(line) for line in lines)  # JSON lines only
    assert "MonkeyPatchWarning" not in proc.output()
    assert any(json.loads(line).get("logger") == "api.access" for line in lines)


def test_chunked_body_over_64_kib_is_413_on_the_wire(api: tuple[Proc, str]) -> None:
    _, address = api
    connection = http.client.HTTPConnection(address, timeout=10)
    try:
        chunks = (b"x" * 65536 for _ in range(16))  # 1 MiB, no Content-Length
        connection.request(
            "POST",
            BASE_PATH,
            body=chunks,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert response.status == 413
        assert response.getheader("Content-Type") == "application/problem+json"
    finally:
        connection.close()
