"""Fixtures of the reliability drills: a private Redis, settings that use it, process clean-up.

Drills stop, kill and restart Redis (and Kafka), so they never touch the shared servers: each
gets its own redis-server (AOF on, everysec) on a free port with its data under tmp_path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from events.settings import Settings
from scripts.harness import Proc, free_port
from scripts.servers import RedisServer


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone; killed by pid at teardown, whatever happened."""
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def drill_settings(settings: Settings, private_redis: RedisServer) -> Settings:
    """The test's settings (own topic and prefix) on the private Redis, with a free API port."""
    return replace(settings, redis_url=private_redis.url, port=free_port(), sse_keepalive_seconds=2)


@pytest.fixture
def drill_redis(private_redis: RedisServer) -> Iterator[redis.Redis]:
    """A client of the private Redis (short timeouts: the server comes and goes)."""
    client = redis.Redis.from_url(private_redis.url, socket_timeout=5, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Processes a test starts; each is stopped by pid at teardown, even when the test fails."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop(timeout=15)
