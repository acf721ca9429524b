"""The real Redis the suite runs against: a key written is read back, with AOF on."""

from __future__ import annotations

import redis


def test_writes_and_reads_a_real_key(redis_client: redis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}:roundtrip"
    redis_client.hset(key, mapping={"a": 1, "b": "two"})
    assert redis_client.hgetall(key) == {b"a": b"1", b"b": b"two"}
    assert redis_client.hincrby(key, "a", 41) == 42


def test_local_stack_redis_persists_with_aof(redis_client: redis.Redis) -> None:
    # Snapshots must survive restarts (SPEC): whatever Redis we run against keeps an AOF.
    assert redis_client.config_get("appendonly") == {"appendonly": "yes"}
