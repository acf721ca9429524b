"""Delete a generation's keys in small steps on every Redis node: no long stall of Redis.

One SCAN step (COUNT `batch`) finds a few hundred keys, one pipeline UNLINKs them (UNLINK
frees large values off Redis's main thread), then a short pause lets other clients in; on a
Redis Cluster each primary is swept on its own connection (a SCAN sees only its node's keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from events.redis_client import cluster_client, is_cluster

BATCH = 500
PAUSE_SECONDS = 0.002


def nodes(client: Any) -> Iterator[Any]:
    """A plain client per node that holds keys: the client itself, or each cluster primary."""
    if is_cluster(client):
        cluster = cluster_client(client)
        for node in cluster.get_primaries():
            yield cluster.get_redis_connection(node)
    else:
        yield client


def sweep(
    client: Any,
    patterns: Iterable[str],
    *,
    batch: int = BATCH,
    pause: float = PAUSE_SECONDS,
    progress: Callable[[int], None] | None = None,
) -> int:
    """UNLINK every key matching one of `patterns`; how many were removed. `progress` is told
    the running total after each step."""
    removed = 0
    wanted = list(patterns)
    for node in nodes(client):
        for pattern in wanted:
            cursor: int | None = None
            while cursor != 0:
                cursor, found = node.scan(cursor or 0, match=pattern, count=batch)
                if found:
                    pipe = node.pipeline(transaction=False)
                    for key in found:
                        pipe.unlink(key)  # one key a command: a node's keys span many slots
                    removed += sum(int(n) for n in pipe.execute())
                    if progress is not None:
                        progress(removed)
                time.sleep(pause)
    return removed


def count_matching(client: Any, patterns: Iterable[str], batch: int = 1000) -> int:
    """How many keys match one of `patterns`, on every node (tests, `rebuild --status`)."""
    wanted = list(patterns)
    return sum(
        1 for node in nodes(client) for p in wanted for _ in node.scan_iter(match=p, count=batch)
    )
