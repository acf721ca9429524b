"""Streams released on disconnect, the per-worker limit, bad parameters, and Redis outages."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import urlparse

import pytest
import redis
from flask.testing import FlaskClient

from api import create_app
from api.middleware import BASE_PATH
from config import Settings
from projector import keys
from scripts.harness import free_port, wait_until
from tests.integration.projection import running_projector
from tests.integration.test_api_outage import Relay
from tests.support.api_inputs import stream_path
from tests.support.streams import SseStream, api_running, open_streams, our_clients, produce

WORKERS = 2
WAVE = 200
PATH = stream_path("org-limits", 0, 10**9)


def _open_one(port: int, i: int) -> SseStream:
    # Half on one (org, range), half on ranges of their own.
    stream = SseStream(port, PATH if i % 2 else stream_path("org-limits", i, 10**9))
    assert stream.status == 200, stream.problem()
    next(stream.events())
    return stream


def _wave(port: int, n: int) -> None:
    """Open `n` streams, 50 at a time (each reads its first event), then drop them all."""
    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(_open_one, port, i) for i in range(n)]
    streams = [f.result() for f in futures if f.exception() is None]
    try:
        assert len(streams) == n, [f.exception() for f in futures if f.exception()]
        assert open_streams(port) == n
    finally:
        for stream in streams:
            stream.close()


def test_dropped_streams_release_everything(settings: Settings, redis_client: redis.Redis) -> None:
    settings = replace(settings, port=free_port(), sse_keepalive_seconds=2)
    prefix = settings.redis_key_prefix
    with api_running(settings, WEB_CONCURRENCY=str(WORKERS)):
        seen = []
        for _ in range(3):
            _wave(settings.port, WAVE)
            wait_until(lambda: open_streams(settings.port) == 0, 20, "the gauge to return to 0")
            seen.append(our_clients(redis_client, prefix))
        # 600 streams came and went: a connection or subscription kept per stream would show
        # hundreds. Pools fill lazily (a wave may reach one worker only), so the counts may
        # rise from wave to wave, but only up to the per-worker bounds.
        fanout = [wave.get(f"{prefix}:stream-fanout", 0) for wave in seen]
        counts = [wave.get(f"{prefix}:stream-counts", 0) for wave in seen]
        assert fanout == sorted(fanout) and fanout[0] >= 1 and fanout[-1] <= WORKERS, seen
        assert counts == sorted(counts) and counts[-1] <= WORKERS * 8, seen
        assert set().union(*seen) <= {f"{prefix}:stream-fanout", f"{prefix}:stream-counts"}, seen
        channel = keys.changes_channel(prefix)
        subscribers = dict(redis_client.pubsub_shardnumsub(channel))[channel.encode()]
        assert 1 <= subscribers <= WORKERS


def test_beyond_max_streams_is_503(settings: Settings) -> None:
    settings = replace(settings, port=free_port(), sse_max_streams=3, sse_keepalive_seconds=1)
    with api_running(settings, WEB_CONCURRENCY="1"):
        held = [SseStream(settings.port, PATH) for _ in range(3)]
        assert [s.status for s in held] == [200] * 3
        refused = SseStream(settings.port, PATH)
        assert refused.status == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        assert refused.problem()["status"] == 503
        refused.close()
        held.pop().close()
        wait_until(lambda: open_streams(settings.port) == 2, 10, "a slot to free up")
        again = SseStream(settings.port, PATH)
        assert again.status == 200
        for stream in [*held, again]:
            stream.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    app = create_app(settings)
    yield app.test_client()
    app.extensions["sse-fanout"].hub.stop()


BAD = [
    ("", 422, {"org_id", "start", "end"}),
    ("?org_id=org-1&start=2026-01-01T00:00:00Z", 422, {"end"}),
    ("?org_id=org-1&start=2026-01-01T00:00:00&end=2026-01-02T00:00:00Z", 422, {"start"}),
    ("?org_id=org-1&start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", 422, {"query"}),
    ("?org_id=-org&start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z", 422, {"org_id"}),
    ("?org_id=org-1&start=10000-01-01T00:00:00Z&end=2026-01-02T00:00:00Z", 422, {"start"}),
    ("?org_id=org-1&start=2026-13-01T00:00:00Z&end=2026-01-02T00:00:00Z", 422, {"start"}),
    (f"?id=count-snapshot-{'0' * 32}&org_id=org-1", 422, {"query"}),
    (f"?id=count-snapshot-{'0' * 32}", 404, None),
    ("?id=not-a-snapshot", 404, None),
]


@pytest.mark.parametrize("base", [BASE_PATH, BASE_PATH + BASE_PATH])
@pytest.mark.parametrize(("query", "status", "fields"), BAD)
def test_bad_parameters_are_problems_not_streams(
    client: FlaskClient, base: str, query: str, status: int, fields: set[str] | None
) -> None:
    response = client.get(f"{base}/stream{query}")
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status
    if fields is not None:
        assert set(problem["errors"]) == fields


def test_new_stream_without_redis_is_503(settings: Settings) -> None:
    app = create_app(replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        started = time.monotonic()
        response = app.test_client().get(PATH)
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert int(response.headers["Retry-After"]) > 0
    finally:
        app.extensions["sse-fanout"].hub.stop()


@pytest.mark.single_redis
def test_open_stream_survives_an_outage_and_catches_up(settings: Settings, topics: str) -> None:
    """Redis goes away: the stream stays open (keep-alives), new ones get 503; then it resumes."""
    url = urlparse(settings.redis_url)
    relay = Relay((url.hostname or "127.0.0.1", url.port or 6379), free_port())
    relay.start()
    via_relay = replace(
        settings,
        port=free_port(),
        redis_url=f"redis://127.0.0.1:{relay.port}/0",
        sse_keepalive_seconds=1,
    )
    org, path = "org-outage", stream_path("org-outage", 0, 10**11)
    try:
        with api_running(via_relay, WEB_CONCURRENCY="1"), running_projector(settings):
            stream = SseStream(via_relay.port, path)
            assert next(stream.events()).json()["record_count"] == 0
            relay.cut()

            def refused() -> bool:
                attempt = SseStream(via_relay.port, path)
                attempt.close()
                return attempt.status == 503 and int(attempt.headers["retry-after"]) > 0

            wait_until(refused, 10, "new streams to be refused")
            # The projector reaches Redis directly and counts these during the outage.
            produce(settings, org, [1_700_000_000 + i for i in range(5)])
            blocks = stream.blocks()
            assert any(b.comments == ["keep-alive"] for b in (next(blocks) for _ in range(3)))
            relay.start()
            events = stream.read_until(lambda d: d["record_count"] == 5, timeout=30)
            assert events[-1].json()["record_count"] == 5
            stream.close()
    finally:
        relay.cut()


def test_a_worker_past_1024_descriptors_keeps_every_stream(settings: Settings, topics: str) -> None:
    """Idle streams check their client socket; past fd 1024 that must not end them."""
    n = 1100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * n), hard))
    settings = replace(settings, port=free_port(), sse_keepalive_seconds=1, sse_max_streams=n)
    org = "org-many"
    path = stream_path(org, 0, 10**10)
    with api_running(settings, WEB_CONCURRENCY="1"), running_projector(settings):
        streams = []
        try:
            for _ in range(n):
                streams.append(SseStream(settings.port, path))
                next(streams[-1].events())
            time.sleep(3)  # several idle checks of every stream
            assert open_streams(settings.port) == n
            produce(settings, org, [1_700_000_000])
            for stream in streams:
                assert stream.read_until(lambda d: d["record_count"] == 1, timeout=30)
        finally:
            for stream in streams:
                stream.close()
