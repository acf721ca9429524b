"""Drill 5: one gunicorn worker SIGKILLed while streams are open. Its clients reconnect after
the server's `retry` with Last-Event-ID and get the current count at once; the other
worker's streams are untouched; the master replaces the dead worker."""

from __future__ import annotations

import os
import signal
import time

import redis

from config import Settings
from scripts.harness import Proc, child_pids, start_api, start_projector, wait_until
from tests.integration.drills import call, serving_worker
from tests.integration.projection import wait_projected
from tests.support.api_inputs import stream_path
from tests.support.live_client import LiveClient
from tests.support.streams import produce

CLIENTS = 12
ORG = "org-drill-worker"
FIRST, LATER = 40, 25  # events before the kill, and published while clients wait to retry


def reconnected(client: LiveClient) -> bool:
    """Whether the client's second connection has delivered an event."""
    return len(client.connections) > 1 and client.connections[1].first_event is not None


def test_worker_sigkill_streams_reconnect(
    drill_settings: Settings, topics: str, drill_redis: redis.Redis, procs: list[Proc]
) -> None:
    settings = drill_settings
    procs.append(start_projector(settings))
    procs.append(start_api(settings, WEB_CONCURRENCY="2"))
    api, port = procs[1], settings.port
    base = 1_700_000_000
    produce(settings, ORG, range(base, base + FIRST))
    wait_projected(settings, drill_redis, timeout=60)
    clients = [LiveClient(port, stream_path(ORG)) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    for client in clients:
        client.wait_count(FIRST, timeout=20)
    wait_until(lambda: len(child_pids(api.pid)) == 2, 10, "two workers")
    workers = child_pids(api.pid)
    holder = {c: serving_worker(port, c.connections[0].local_port or 0, workers) for c in clients}
    assert set(holder.values()) <= set(workers), holder
    victim = max(workers, key=lambda w: sum(1 for h in holder.values() if h == w))
    cut = [c for c in clients if holder[c] == victim]
    kept = [c for c in clients if holder[c] != victim]

    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    produce(settings, ORG, range(base + FIRST, base + FIRST + LATER))
    wait_projected(settings, drill_redis, timeout=30)
    projected_at = time.monotonic()
    total = FIRST + LATER

    for client in cut:
        wait_until(lambda c=client: reconnected(c), 20, "a cut stream to reconnect")
    delays, firsts = [], []
    for client in cut:
        old, new = client.connections[0], client.connections[1]
        assert new.status == 200
        assert new.last_event_id is not None
        assert new.last_event_id == [e for e in client.events if e.connection == 0][-1].id
        delays.append(new.opened - (old.ended or killed_at))
        assert new.opened > projected_at, "the projection finished after the reconnect"
        first = next(e for e in client.events if e.connection == 1)
        firsts.append(first.at - new.opened)
        assert first.data["record_count"] == total  # the current count, at once
        assert int(first.id or 0) > int(new.last_event_id)
    for client in kept:
        client.wait_count(total, timeout=10)
        assert len(client.connections) == 1, client.connections
    wait_until(lambda: len(child_pids(api.pid)) == 2, 30, "gunicorn to replace the worker")
    assert victim not in child_pids(api.pid)
    assert call(port, "GET", "/readyz").status == 200
    print(
        f"\nkilled worker {victim} holding {len(cut)} of {CLIENTS} streams: reconnected after "
        f"{min(delays):.2f}-{max(delays):.2f} s (retry 3 s); first event "
        f"{max(firsts) * 1000:.0f} ms after reconnecting at most; {len(kept)} streams untouched"
    )
    assert all(2.9 <= d <= 5.0 for d in delays), delays
    assert max(firsts) < 1.0, firsts
    for client in clients:
        client.close()
