"""The layout stays compact whatever the density: after a busy day no counter or dedup key of
the org is `hashtable`-encoded (OBJECT ENCODING), and counts still equal the oracle."""

from __future__ import annotations

import itertools
import random

import pytest
import redis

from projector import keys
from projector.store import APPLY_CHUNK, CounterStore, Increment

DAY = 86_400
WEEK = 7 * DAY
START = 1_774_483_200  # 2026-03-26T00:00:00Z


def _encodings(client: redis.Redis, base: str) -> dict[str, set[str]]:
    """Per key kind (counters, dedup), the encodings of every key of the org at `base`."""
    found: dict[str, set[str]] = {}
    for raw in client.scan_iter(match=f"{base}*", count=1000):  # every primary on a cluster
        key = raw.decode()
        encoding = client.object("encoding", key)
        found.setdefault(keys.kind_of(key), set()).add(
            encoding.decode() if isinstance(encoding, bytes) else str(encoding)
        )
    return found


@pytest.mark.parametrize("per_day", [60_000])
def test_a_busy_day_keeps_every_key_compact_and_every_count_exact(
    redis_client: redis.Redis, key_prefix: str, per_day: int
) -> None:
    store = CounterStore(redis_client, key_prefix, "record-events", WEEK)
    rng = random.Random(per_day)
    org = "org-busy"
    seconds: list[int] = []
    batch: list[Increment] = []
    for offset in range(per_day):
        second = START + rng.randrange(DAY)
        # 3 % are a producer's retries of an earlier event: counted once.
        if seconds and rng.random() < 0.03:
            event = f"e{rng.randrange(len(seconds))}"
        else:
            event = f"e{len(seconds)}"
            seconds.append(second)
        batch.append(Increment(org, event, second, 0, offset, START + offset // 100))
        if len(batch) == 5 * APPLY_CHUNK:
            store.apply(batch, {})
            batch.clear()
    store.apply(batch, {})
    found = _encodings(redis_client, keys.org_base(key_prefix, org))
    assert found["counters"] == {"listpack"}
    assert "hashtable" not in found["dedup"] and "listpack" in found["dedup"]
    seconds.sort()
    assert store.count(org, START, START + DAY - 1) == len(seconds)
    for _ in range(200):
        a, b = sorted(rng.randrange(START - 5, START + DAY + 5) for _ in range(2))
        assert store.count(org, a, b) == sum(1 for s in seconds if a <= s <= b)
    edges = [START + h * 3_600 for h in range(25)]
    counts, _, _ = store.count_series(org, edges)
    assert counts == [
        sum(1 for s in seconds if lo <= s < hi) for lo, hi in itertools.pairwise(edges)
    ]
