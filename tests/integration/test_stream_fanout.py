"""The per-process hub on a real Redis: who is recounted for which notice, and reconnection."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from api.fanout import Hub, Reading, Subscriber, TooManyStreams
from api.stream import connect_pubsub
from config import Settings
from projector.keys import changes_channel
from scripts.harness import wait_until

GRACE = 10


class FakeCounts:
    """Counts handed out by the test; remembers which (org, start, end) were counted."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.complete_after: float | None = None

    def __call__(self, org_id: str, start: int, end: int) -> Reading:
        self.calls.append((org_id, start, end))
        done = self.complete_after is not None and end + GRACE <= self.complete_after
        return Reading(len(self.calls), done)


@pytest.fixture
def counts() -> FakeCounts:
    return FakeCounts()


@pytest.fixture
def hub(settings: Settings, counts: FakeCounts) -> Iterator[Hub]:
    hub = Hub(
        connect_pubsub(settings),
        changes_channel(settings.redis_key_prefix),
        counts,
        GRACE,
        max_streams=4,
    )
    yield hub
    hub.stop()


def _publish(
    client: redis.Redis, hub: Hub, orgs: dict[str, list[int]], caught: float | None
) -> None:
    client.spublish(hub.channel, json.dumps({"orgs": orgs, "caught_up_at": caught}))


def _woken(subscribers: list[Subscriber]) -> list[bool]:
    return [s.wait(0) for s in subscribers]


def test_only_streams_whose_org_and_range_a_notice_touches_are_woken(
    hub: Hub, counts: FakeCounts, redis_client: redis.Redis
) -> None:
    a1 = hub.open("org-a", 100, 200)
    a1_again = hub.open("org-a", 100, 200)  # same watch: counted once for both
    a2 = hub.open("org-a", 300, 400)
    b1 = hub.open("org-b", 100, 200)
    streams = [a1, a1_again, a2, b1]
    for stream in streams:
        stream.watch.read(hub.counter)
    assert len(counts.calls) == 3
    for stream in streams:
        stream.clear()

    _publish(redis_client, hub, {"org-a": [150, 150], "org-c": [0, 10**9]}, None)
    wait_until(lambda: a1.wait(0), 5, "the touched stream to wake")
    assert _woken(streams) == [True, True, False, False]
    assert a1.watch.read(hub.counter) == a1_again.watch.read(hub.counter)
    assert counts.calls[3:] == [("org-a", 100, 200)]

    # Bounds are inclusive: [200, 300] touches both org-a ranges, not org-b.
    for stream in streams:
        stream.clear()
    _publish(redis_client, hub, {"org-a": [200, 300]}, None)
    wait_until(lambda: a2.wait(0), 5, "both org-a ranges to wake")
    assert _woken(streams) == [True, True, True, False]


def test_progress_wakes_a_stream_only_when_it_can_complete(
    hub: Hub, counts: FakeCounts, redis_client: redis.Redis
) -> None:
    early, late = hub.open("org-a", 0, 1000), hub.open("org-a", 0, 5000)
    for stream in (early, late):
        assert stream.watch.read(hub.counter).complete is False
        stream.clear()
    _publish(redis_client, hub, {}, 1000.0 + GRACE - 1)  # not yet for either
    _publish(redis_client, hub, {}, 1000.0 + GRACE)  # end + grace caught up: `early` only
    wait_until(lambda: early.wait(0), 5, "the closing range to wake")
    assert late.wait(0.2) is False
    counts.complete_after = 1000.0 + GRACE
    assert early.watch.read(hub.counter).complete is True
    # Once complete, progress no longer wakes it.
    early.clear()
    _publish(redis_client, hub, {}, 2000.0)
    assert early.wait(0.5) is False


def test_limit_and_release(hub: Hub) -> None:
    held = [hub.open("org-a", 0, i) for i in range(4)]
    with pytest.raises(TooManyStreams):
        hub.open("org-a", 0, 99)
    hub.close(held[0])
    hub.close(held[0])  # idempotent
    assert hub.open_streams == 3
    hub.open("org-a", 0, 99)
    for stream in held[1:]:
        hub.close(stream)
    assert hub.open_streams == 1


def test_a_lost_subscription_resubscribes_and_wakes_every_stream(
    hub: Hub, settings: Settings, redis_client: redis.Redis
) -> None:
    stream = hub.open("org-a", 0, 10)
    stream.clear()
    name = f"{settings.redis_key_prefix}:stream-fanout"
    # Only this hub's connection (by its name): the Redis may be shared.
    ours = [c["id"] for c in redis_client.client_list() if c.get("name") == name]
    assert len(ours) == 1
    redis_client.client_kill_filter(_id=ours[0])
    # Notices sent while it was away are lost, so every stream is woken to recount.
    wait_until(lambda: stream.wait(0), 10, "the stream to be woken after resubscribing")
    wait_until(lambda: hub.live, 10, "the subscription to be live again")
    assert [c.get("name") for c in redis_client.client_list()].count(name) == 1
