"""Generations against a real Redis: each has keys of its own, its SCAN patterns match exactly
those, the record's transitions are atomic under races, and every count that is stored
(POST, PUT) is of the live generation even right after a switch this process missed."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from api.snapshots import SnapshotStore
from projector import keys
from projector.generation import GenerationState, RebuildRunning
from projector.live import LiveCounters, LiveGeneration
from projector.registry import GenerationRegistry, new_owner
from projector.store import CounterStore, Increment
from projector.sweep import count_matching, sweep

TOPIC = "record-events"
NOW = 1_774_521_852
WINDOW = 3_600
ORGS = ("org-1", "o:pos:x", "9.z_", "org-2")  # an org id may hold ":pos:"

pytestmark = pytest.mark.integration


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def all_keys(client: Any, prefix: str) -> set[str]:
    """Every key under the prefix, on every node."""
    from projector.sweep import nodes

    return {
        text(k) for node in nodes(client) for k in node.scan_iter(match=f"{prefix}:*", count=1000)
    }


def fill(store: CounterStore, events: int) -> None:
    incs = [
        Increment(org, f"e{i}-{org}", NOW - 60 * i, i % 3, i, NOW)
        for org in ORGS
        for i in range(events)
    ]
    positions = {p: events for p in range(3)}
    store.apply(incs, positions)
    store.set_caught_up({0: NOW - 5.0, 1: NOW - 6.0, 2: NOW - 7.0}, 3)


def switch_to_next(registry: GenerationRegistry, window: int = WINDOW) -> GenerationState:
    """Claim, move and switch, as a rebuild does (without building anything)."""
    me = new_owner()
    registry.update(lambda s: s.claim(me, window, lambda _o: False))
    registry.update(lambda s: s.request_move(me.token))
    return registry.update(lambda s: s.switch(me.token, NOW))


def live_counters(client: Any, prefix: str) -> LiveCounters:
    return LiveCounters(client, prefix, TOPIC, LiveGeneration(client, prefix, ttl=3_600))


def test_each_generation_has_its_own_keys_and_its_patterns_match_exactly_them(
    redis_client: Any, key_prefix: str
) -> None:
    first = CounterStore(redis_client, key_prefix, TOPIC, WINDOW)
    second = CounterStore(redis_client, key_prefix, TOPIC, WINDOW, generation=2)
    fill(first, 20)
    before = all_keys(redis_client, key_prefix)
    before.remove(keys.layout_key(key_prefix))  # the deployment's: each writer marks its own
    fill(second, 30)
    registry = GenerationRegistry(redis_client, key_prefix, WINDOW)
    registry.ensure()
    registry.ack("member-1", 1)
    counters = live_counters(redis_client, key_prefix)
    SnapshotStore(redis_client, counters).count_and_upsert("org-1", 0, NOW, 300, NOW, "id-1")
    everything = all_keys(redis_client, key_prefix)
    shared = everything - before - {k for k in everything if k.startswith(f"{key_prefix}:#2:")}
    assert {k for k in shared if "snapshots" in k} and keys.generation_key(key_prefix) in shared
    assert first.count("org-1", 0, NOW) == 20 and second.count("org-1", 0, NOW) == 30
    assert first.positions() == {0: 20, 1: 20, 2: 20} and second.positions() == {
        p: 30 for p in range(3)
    }

    patterns = {g: keys.generation_patterns(key_prefix, g) for g in (1, 2)}
    assert count_matching(redis_client, patterns[1]) == len(before)
    assert count_matching(redis_client, patterns[2]) == len(everything) - len(before) - len(shared)

    removed = sweep(redis_client, patterns[2], batch=7)
    assert removed == len(everything) - len(before) - len(shared)
    assert all_keys(redis_client, key_prefix) == before | shared
    assert first.count("org-1", 0, NOW) == 20 and second.count("org-1", 0, NOW) == 0

    assert sweep(redis_client, patterns[1], batch=5) == len(before)
    assert all_keys(redis_client, key_prefix) == shared  # snapshots and the record stay
    assert registry.read().version == 1


def test_concurrent_claims_one_wins_the_others_are_refused(
    redis_client: Any, key_prefix: str
) -> None:
    registry = GenerationRegistry(redis_client, key_prefix, WINDOW)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def claim() -> None:
        me = new_owner()
        start.wait()
        try:
            registry.update(lambda s: s.claim(me, WINDOW, lambda _o: True))
            outcomes.append(me.token)
        except RebuildRunning:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1 and len(outcomes) == 8
    state = registry.read()
    assert state.rebuild is not None and state.rebuild.owner.token == winners[0]
    assert state.version == 1 and state.last == 2


def test_stored_counts_are_of_the_live_generation_right_after_a_switch(
    redis_client: Any, key_prefix: str
) -> None:
    old = CounterStore(redis_client, key_prefix, TOPIC, WINDOW)
    new = CounterStore(redis_client, key_prefix, TOPIC, WINDOW, generation=2)
    fill(old, 3)
    fill(new, 5)
    new.set_caught_up({p: NOW + 1_000.0 for p in range(3)}, 3)
    counters = live_counters(redis_client, key_prefix)
    snapshots = SnapshotStore(redis_client, counters)
    first, _ = snapshots.count_and_upsert("org-2", 0, NOW, 300, NOW, "id-a")
    assert first.record_count == 3 and not first.is_complete
    assert counters.live.current() == 1  # cached, for an hour in this test

    switch_to_next(GenerationRegistry(redis_client, key_prefix, WINDOW))
    # This process has not heard of the switch: the script refuses the stale generation and
    # the count is taken again in the live one, complete by its caught_up_at.
    again, created = snapshots.count_and_upsert("org-2", 0, NOW, 300, NOW + 1, "id-b")
    assert not created and again.id == first.id
    assert again.record_count == 5 and again.is_complete
    assert counters.live.current() == 2

    counters.live.learn(1)  # stale once more: a PUT recounts in the live generation too
    moved = snapshots.replace(again, 0, NOW - 60, 300, NOW + 2)
    assert moved is not None and moved.record_count == 4 and moved.is_complete
    assert counters.live.current() == 2

    total, _, live = old.count_caught_up_and_live("org-2", 0, NOW)
    assert (total, live) == (3, 2)  # the streams' read names the live generation beside
