"""CounterStore against a real Redis: exact counts vs a brute-force oracle, exactly-once
application under replays and partial (crashed) batches, dedup window, positions, progress."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.redis_client import is_cluster
from projector import keys
from projector.buckets import MAX_SECOND
from projector.store import (
    APPLY_CHUNK,
    ApplyResult,
    Change,
    CounterStore,
    Increment,
    PositionsDiverged,
    StoreError,
    decode_change,
)
from scripts.servers import RedisServer
from tests.support.oracles import CountTree
from tests.support.redis_sends import count_sends

TOPIC = "record-events"
NOW = 1_774_521_852  # 2026-03-26T10:44:12Z
YEAR = 365 * 86_400

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str) -> CounterStore:
    return CounterStore(redis_client, key_prefix, TOPIC, 3_600)


def inc(org: str, eid: str, second: int, offset: int, seen: int = NOW, part: int = 0) -> Increment:
    return Increment(org, eid, second, part, offset, seen)


class Oracle:
    """Counts by brute force, deciding duplicates from the spec's rule directly."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.counted: dict[tuple[str, str], list[int]] = {}  # (org, event) -> seen_at counted
        self.seconds: dict[str, list[int]] = {}
        self.done: set[tuple[int, int]] = set()  # (partition, offset) already decided

    def feed(self, increments: list[Increment]) -> tuple[int, int]:
        """Decide the increments not decided yet; (counted, duplicates) among them."""
        counted = duplicates = 0
        for i in increments:
            if (i.partition, i.offset) in self.done:
                continue
            self.done.add((i.partition, i.offset))
            seen = self.counted.setdefault((i.org_id, i.event_id), [])
            if any(abs(i.seen_at - t) <= self.window for t in seen):
                duplicates += 1
            else:
                counted += 1
                seen.append(i.seen_at)
                self.seconds.setdefault(i.org_id, []).append(i.second)
        return counted, duplicates

    def count(self, org: str, start: int, end: int) -> int:
        return sum(1 for s in self.seconds.get(org, ()) if start <= s <= end)


def make_stream(rnd: random.Random, n: int, orgs: int, window: int) -> list[Increment]:
    """Events in offset order over 3 partitions: years apart and clustered, retried ids,
    record times that mostly advance but sometimes step back across a dedup generation."""
    clusters = [rnd.randrange(0, MAX_SECOND) for _ in range(3)] + [NOW, NOW - 5 * YEAR]
    offsets = [0, 0, 0]
    seen = NOW - 10 * window
    out: list[Increment] = []
    for _ in range(n):
        org = f"org-{rnd.randrange(orgs)}"
        part = rnd.randrange(3) if rnd.random() < 0.2 else int(org[4:]) % 3
        if out and rnd.random() < 0.25:
            # A retry or replay of an earlier event of this org (maybe beyond the window).
            earlier = [i for i in out[-200:] if i.org_id == org]
            eid, second = (earlier[-1].event_id, earlier[-1].second) if earlier else ("x", NOW)
        else:
            eid = uuid.UUID(int=rnd.getrandbits(128)).hex
            base = rnd.choice(clusters)
            second = min(MAX_SECOND, max(0, base + rnd.randrange(-86_400, 86_400)))
            if rnd.random() < 0.1:
                second = rnd.choice([0, MAX_SECOND, NOW, NOW + 59, NOW + 60])
        seen += rnd.choice([0, 1, 7, window // 3, window + 1, -window // 2])
        out.append(Increment(org, eid, second, part, offsets[part], seen))
        offsets[part] += 1
    return out


def ranges(rnd: random.Random, stream: list[Increment]) -> Iterator[tuple[str, int, int]]:
    """Hundreds of ranges: event-second edges, single seconds, multi-year, everything."""
    points = [i.second for i in stream]
    for _ in range(300):
        org = rnd.choice(stream).org_id
        kind = rnd.randrange(5)
        if kind == 0:
            a = rnd.choice(points) + rnd.choice([-1, 0, 1])
            b = rnd.choice(points) + rnd.choice([-1, 0, 1])
        elif kind == 1:
            a = b = rnd.choice(points)
        elif kind == 2:
            a = rnd.choice(points) - rnd.randrange(10 * YEAR)
            b = a + rnd.randrange(30 * YEAR)
        elif kind == 3:
            a, b = rnd.randrange(MAX_SECOND), rnd.randrange(MAX_SECOND)
        else:
            a, b = 0, MAX_SECOND
        a, b = sorted((min(max(a, 0), MAX_SECOND), min(max(b, 0), MAX_SECOND)))
        yield org, a, b


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 600), orgs=st.integers(1, 12))
def test_counts_match_the_oracle_under_replays_and_crashes(
    redis_client: redis.Redis, key_prefix: str, seed: int, n: int, orgs: int
) -> None:
    rnd = random.Random(seed)
    window = rnd.choice([60, 3_600, 7 * 86_400])
    store = CounterStore(redis_client, f"{key_prefix}:{seed}-{n}-{orgs}", TOPIC, window)
    stream = make_stream(rnd, n, orgs, window)
    oracle = Oracle(window)
    batches: list[list[Increment]] = []
    i = 0
    while i < len(stream):
        size = rnd.choice([1, 2, 7, 50, 400])
        batch = stream[i : i + size]
        i += size
        first = ApplyResult()
        if rnd.random() < 0.2:
            # The pipeline died after some orgs' scripts: apply those, then the whole batch.
            crashed = {o for o in {x.org_id for x in batch} if rnd.random() < 0.5}
            partial = [x for x in batch if x.org_id in crashed]
            first = store.apply(partial, {})
            assert (first.applied, first.duplicates) == oracle.feed(partial)
        result = store.apply(batch, {x.partition: x.offset + 1 for x in batch})
        counted, duplicates = oracle.feed(batch)
        assert (result.applied, result.duplicates) == (counted, duplicates)
        assert result.already_applied == first.applied + first.duplicates
        assert set(result.orgs) <= {x.org_id for x in batch}
        batches.append(batch)
        if rnd.random() < 0.2:
            # A replay from an older stored position changes nothing.
            replay = store.apply(rnd.choice(batches), {})
            assert replay.applied == replay.duplicates == 0
    for org, a, b in ranges(rnd, stream):
        assert store.count(org, a, b) == oracle.count(org, a, b), (org, a, b)
    for o in {x.org_id for x in stream}:
        assert store.count(o, 0, MAX_SECOND) == len(oracle.seconds.get(o, ()))


def test_apply_reports_applied_duplicates_and_replays(store: CounterStore) -> None:
    batch = [inc("org-1", "a", NOW, 0), inc("org-1", "a", NOW + 5, 1), inc("org-2", "a", 7, 2)]
    result = store.apply(batch, {0: 3})
    assert result == ApplyResult(2, 1, 0, {"org-1": (NOW, NOW), "org-2": (7, 7)})
    again = store.apply(batch, {0: 3})
    assert again == ApplyResult(0, 0, 3, {"org-1": (NOW, NOW + 5), "org-2": (7, 7)})
    assert store.count("org-1", 0, MAX_SECOND) == 1 and store.count("org-2", 7, 7) == 1
    assert store.positions() == {0: 3}


def test_replaying_an_applied_batch_changes_no_key(
    store: CounterStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    batch = [inc(f"org-{k % 3}", f"e{k % 40}", NOW + 977 * k, k, NOW + k) for k in range(100)]
    store.apply(batch, {0: 100})

    def state() -> dict[bytes, object]:
        found = redis_client.scan_iter(match=f"{key_prefix}:*")
        # Hashes, and the dedup directories (strings).
        return {
            k: redis_client.get(k) if redis_client.type(k) == b"string" else redis_client.hgetall(k)
            for k in found
        }

    before = state()
    assert store.apply(batch, {0: 100}).already_applied == 100
    assert store.apply(batch[30:60], {}).already_applied == 30
    assert state() == before


@pytest.mark.parametrize(
    ("first", "second", "counted"),
    [
        (NOW, NOW + 10, 1),
        (NOW, NOW + 3_600, 1),  # exactly one window apart: still a duplicate
        (NOW, NOW + 3_601, 2),
        (7_200 * 10 - 1, 7_200 * 10 + 5, 1),  # across a generation boundary
        (3_600 * 500 + 2, 3_600 * 500 - 3, 1),  # record time stepping back a generation
        (NOW, NOW + 2 * 3_600, 2),
    ],
)
def test_dedup_window(store: CounterStore, first: int, second: int, counted: int) -> None:
    store.apply([inc("org-1", "same", 100, 0, first)], {})
    store.apply([inc("org-1", "same", 100, 1, second)], {})
    assert store.count("org-1", 0, MAX_SECOND) == counted


def test_dedup_is_per_org_and_within_a_batch(store: CounterStore) -> None:
    batch = [inc("org-1", "e", 5, 0), inc("org-2", "e", 5, 1), inc("org-1", "e", 6, 2)]
    assert store.apply(batch, {}).duplicates == 1
    assert store.count("org-1", 0, 10) == store.count("org-2", 0, 10) == 1


def test_dedup_hashes_expire(
    store: CounterStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    store.apply([inc("org-1", "e", 5, 0, int(time.time()))], {})
    dedup = list(redis_client.scan_iter(match=f"{key_prefix}:{{org-1}}:x:*"))
    assert dedup and all(0 < redis_client.ttl(k) <= 2 * 3_600 + 86_400 + 2 for k in dedup)


def stored_counters(redis_client: redis.Redis, base: str) -> dict[str, dict[int | str, int]]:
    """Every counter hash of the org at `base`, as the oracle's CountTree holds them."""
    found: dict[str, dict[int | str, int]] = {}
    for raw in redis_client.scan_iter(match=f"{base}*"):
        key = raw.decode()
        if keys.kind_of(key) != "counters":
            continue
        fields = redis_client.hgetall(key)
        found[key] = {
            (f.decode() if f.decode() == keys.NODE_MARK else int(f)): int(v)
            for f, v in fields.items()
        }
    return found


def test_layout_of_written_counters_matches_keys_module(
    store: CounterStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    second = 1_774_521_852
    store.apply([inc("org-9", "e", second, 0)], {})
    base = keys.org_base(key_prefix, "org-9")
    tree = CountTree(base)
    tree.apply([(second, 1)])
    assert stored_counters(redis_client, base) == tree.hashes
    assert redis_client.hget(keys.upper_key(base), 0) == b"1"
    root = keys.node_key(base, keys.TREE_TOP, 0)
    assert redis_client.hget(root, second) == b"1"
    assert redis_client.hget(keys.offsets_key(base), keys.offset_field(TOPIC, 0)) == b"0"


def test_splits_written_by_the_script_match_the_oracle_tree(
    store: CounterStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    """Batches that split leaves at several levels leave exactly the oracle's hashes."""
    rng = random.Random(21)
    base = keys.org_base(key_prefix, "org-split")
    tree = CountTree(base)
    day = NOW // 86_400 * 86_400
    seconds = [day + rng.randrange(86_400) for _ in range(3_000)]
    seconds += [NOW - rng.randrange(3 * YEAR) for _ in range(2_000)]
    offset = 0
    for k in range(0, len(seconds), 700):
        chunk = seconds[k : k + 700]
        store.apply(
            [inc("org-split", f"e{offset + n}", s, offset + n) for n, s in enumerate(chunk)], {}
        )
        tree.apply([(s, 1) for s in chunk])
        offset += len(chunk)
    assert stored_counters(redis_client, base) == tree.hashes
    for _ in range(200):
        a, b = sorted(rng.sample(seconds, 2))
        assert store.count("org-split", a, b) == sum(1 for s in seconds if a <= s <= b)


def test_an_org_spread_over_partitions_keeps_offsets_apart(store: CounterStore) -> None:
    store.apply([inc("org-1", "a", 1, 10, part=0), inc("org-1", "b", 2, 5, part=1)], {})
    result = store.apply([inc("org-1", "c", 3, 6, part=1), inc("org-1", "d", 4, 10, part=0)], {})
    assert (result.applied, result.already_applied) == (1, 1)
    assert store.count("org-1", 0, 10) == 3


def test_positions_round_trip_and_divergence(store: CounterStore) -> None:
    assert store.positions() == {}
    store.apply([], {0: 10, 1: 20})
    assert store.positions() == {0: 10, 1: 20}
    batch = [inc("org-1", "a", 1, 20)]
    with pytest.raises(PositionsDiverged) as caught:
        store.apply(batch, {0: 21}, {0: 9})
    assert caught.value.stored == {0: 10}
    assert store.count("org-1", 0, 10) == 0 and store.positions()[0] == 10
    store.apply(batch, {0: 21, 2: 1}, {0: 10, 2: None})
    # A retry of a batch whose positions were written already is not a divergence.
    assert store.apply(batch, {0: 21, 2: 1}, {0: 10, 2: None}).already_applied == 1
    assert store.positions() == {0: 21, 1: 20, 2: 1}
    # Positions only move forward: a late batch of a member that lost the partition.
    store.apply([], {0: 15, 1: 25})
    assert store.positions() == {0: 21, 1: 25, 2: 1}


def test_caught_up_round_trip(store: CounterStore) -> None:
    assert store.caught_up_at() is None
    assert store.count_and_caught_up("org-1", 0, 5) == (0, None)
    assert store.set_caught_up({0: 100.25}, partitions=2) is None
    assert store.caught_up_at() is None
    assert store.set_caught_up({1: 50.5}) == 50.5
    assert store.caught_up_at() == 50.5
    # Times only move forward: a member that lost a partition cannot pull it back.
    assert store.set_caught_up({0: 10.0, 1: 60.0}) == 60.0
    assert store.set_caught_up({}, partitions=3) is None and store.caught_up_at() is None
    assert store.set_caught_up({2: 70.0}) == 60.0
    assert store.set_caught_up({}, partitions=1) == 100.25
    store.apply([inc("org-1", "a", 3, 0)], {})
    assert store.count_and_caught_up("org-1", 0, 5) == (1, 100.25)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per command batch sent to Redis (a pipeline is one), from now on."""
    return count_sends(monkeypatch)


def test_reads_are_one_round_trip(
    store: CounterStore, redis_client: redis.Redis, request: pytest.FixtureRequest
) -> None:
    store.apply([inc("org-1", "a", NOW, 0)], {})
    store.set_caught_up({0: 1.0})
    store.count("org-1", 0, 1)  # scripts are loaded now; NOSCRIPT would cost a reload
    sends: list[int] = request.getfixturevalue("sends")
    for a, b in [(NOW, NOW), (1, MAX_SECOND - 1), (0, MAX_SECOND), (NOW - 59, NOW + 3_601)]:
        sends.clear()
        assert store.count("org-1", a, b) == (1 if a <= NOW <= b else 0)
        assert len(sends) == 1
        sends.clear()
        assert store.count_and_caught_up("org-1", a, b)[1] == 1.0
        # On a cluster the org's node and the shared slot's node are asked at once.
        assert len(sends) == (2 if is_cluster(redis_client) else 1)


def test_scripts_reload_after_a_flush(store: CounterStore, redis_client: redis.Redis) -> None:
    redis_client.script_flush()
    assert store.apply([inc("org-1", "a", 3, 0)], {}).applied == 1
    redis_client.script_flush()
    assert store.count("org-1", 0, 5) == 1


def test_changes_are_published_and_decoded(store: CounterStore, redis_client: redis.Redis) -> None:
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.ssubscribe(store.channel)  # sharded pub/sub: the channel's node alone carries it
    try:
        pubsub.get_sharded_message(timeout=1.0)
        result = store.apply([inc("org-1", "a", 3, 0), inc("org-2", "b", 9, 1)], {})
        store.publish_changes(result, 12.5)
        store.publish_progress(None)
        got = [pubsub.get_sharded_message(timeout=2.0) for _ in range(2)]
    finally:
        pubsub.close()
    assert decode_change(got[0]) == Change({"org-1": (3, 3), "org-2": (9, 9)}, 12.5)
    assert decode_change(got[1]["data"]) == Change({}, None)


@pytest.mark.parametrize("bad", [b"", b"[]", b'{"orgs": {"o": [1]}, "caught_up_at": 1}', {"x": 1}])
def test_malformed_changes_raise_store_error(bad: object) -> None:
    with pytest.raises(StoreError):
        decode_change(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("org", "start", "end"),
    [("org-1", 5, 4), ("org-1", -1, 4), ("org-1", 0, MAX_SECOND + 1), ("bad org", 0, 1)],
)
def test_invalid_reads_are_refused(store: CounterStore, org: str, start: int, end: int) -> None:
    with pytest.raises(ValueError):
        store.count(org, start, end)


@pytest.mark.parametrize("second", [-1, MAX_SECOND + 1])
def test_invalid_seconds_are_refused(store: CounterStore, second: int) -> None:
    with pytest.raises(ValueError):
        store.apply([inc("org-1", "a", second, 0)], {})


def test_the_count_script_reads_the_tree_as_the_oracle_does(
    store: CounterStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    # Weighted events at the edges of every level, written as the oracle's tree (splits at
    # a low threshold, so every level has interior nodes): the script must count them all.
    rng = random.Random(11)
    base = keys.org_base(key_prefix, "org-lua")
    edges = [0, MAX_SECOND, 86_399, 86_400, 2_764_799, 2_764_800, 11_324_620_800]
    seconds = edges + [rng.randrange(MAX_SECOND + 1) for _ in range(150)]
    seconds += [NOW + rng.randrange(-3 * YEAR, 3 * YEAR) for _ in range(150)]
    weights = {s: rng.randrange(1, 1000) for s in seconds}
    tree = CountTree(base, split_at=4)
    items = list(weights.items())
    for k in range(0, len(items), 9):
        tree.apply(items[k : k + 9])
    _write(redis_client, tree)

    points = sorted({min(MAX_SECOND, max(0, s + d)) for s in seconds for d in (-1, 0, 1)})
    for _ in range(400):
        start, end = sorted(rng.sample(points, 2))
        if rng.random() < 0.1:
            end = start
        reference = sum(w for s, w in weights.items() if start <= s <= end)
        assert store.count("org-lua", start, end) == reference, (start, end)
    assert store.count("org-lua", 0, MAX_SECOND) == sum(weights.values())


def _write(redis_client: redis.Redis, tree: CountTree) -> None:
    pipe = redis_client.pipeline(transaction=False)
    for key, fields in tree.hashes.items():
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
    pipe.execute()


def test_a_busy_orgs_share_is_applied_in_chunks_exactly_once(
    store: CounterStore, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More increments of one org than APPLY_CHUNK: several Lua calls, one exact result,
    duplicates straddling the calls counted once, and a crash between calls harmless."""
    rnd = random.Random(5)
    n = 2 * APPLY_CHUNK + 500
    batch = [
        inc(
            "org-busy",
            f"e{rnd.randrange(n // 2)}",
            NOW - rnd.randrange(YEAR),
            k,
            NOW + k % 7,
            part=k % 2,
        )
        for k in range(n)
    ]
    oracle = Oracle(3_600)
    calls: list[int] = []
    original = store._apply_command

    def spy(org: str, incs: list[Increment], now: int) -> tuple[object, ...]:
        calls.append(len(incs))
        return original(org, incs, now)

    monkeypatch.setattr(store, "_apply_command", spy)
    # A crash after the first call landed: only its increments are in Redis.
    first = store.apply(batch[:APPLY_CHUNK], {})
    assert first.applied + first.duplicates == APPLY_CHUNK
    result = store.apply(batch, {0: n})
    assert calls == [APPLY_CHUNK, APPLY_CHUNK, APPLY_CHUNK, 500]
    want_counted, want_dups = oracle.feed(batch)
    assert (first.applied + result.applied, first.duplicates + result.duplicates) == (
        want_counted,
        want_dups,
    )
    assert result.already_applied == APPLY_CHUNK
    seconds = [i.second for i in batch]
    assert result.orgs["org-busy"] == (min(seconds), max(seconds))
    for _ in range(50):
        a, b = sorted(rnd.randrange(NOW - YEAR, NOW + 1) for _ in range(2))
        assert store.count("org-busy", a, b) == oracle.count("org-busy", a, b)


def _random_counters(redis_client: redis.Redis, base: str, rng: random.Random) -> list[int]:
    """A count tree of events at many seconds, several at some, split at a low threshold so
    every level holds interior nodes and leaves; the seconds."""
    edges = [0, MAX_SECOND, 86_399, 86_400, 2_764_799, 2_764_800, 11_324_620_800]
    seconds = edges + [rng.randrange(MAX_SECOND + 1) for _ in range(300)]
    seconds += [NOW + rng.randrange(-3 * YEAR, 3 * YEAR) for _ in range(3000)]
    seconds += [NOW + rng.randrange(-86_400, 86_400) for _ in range(1000)]
    tree = CountTree(base, split_at=16)
    events = [(second, rng.choice([1, 1, 1, 2, 7])) for second in seconds]
    for k in range(0, len(events), 100):
        tree.apply(events[k : k + 100])
    _write(redis_client, tree)
    return seconds


def _series_cases(rng: random.Random, seconds: list[int]) -> Iterator[list[int]]:
    """Edge lists: near stored seconds, evenly spaced (days, hours at odd offsets), the extremes."""
    points = sorted({min(MAX_SECOND, max(0, s + d)) for s in seconds for d in (-1, 0, 1)})
    for case in range(120):
        kind = case % 4
        if kind == 0:
            chosen = sorted(set(rng.sample(points, rng.randrange(2, 60))))
        elif kind == 1:  # local days of a zone at an odd offset
            step = rng.choice([86_400, 3_600, 7 * 86_400])
            first = NOW - rng.randrange(2 * YEAR) + rng.choice([0, 20_700, -3_600, 37_800])
            chosen = [first + i * step for i in range(rng.randrange(2, 400))]
        elif kind == 2:
            chosen = sorted({rng.randrange(MAX_SECOND + 2) for _ in range(rng.randrange(2, 30))})
        else:
            chosen = [0, rng.choice(points), MAX_SECOND + 1]
        if len(chosen) >= 2:
            yield chosen


def test_the_series_script_counts_each_range_as_the_count_script_does(
    store: CounterStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    rng = random.Random(13)
    base = keys.org_base(key_prefix, "org-series")
    seconds = _random_counters(redis_client, base, rng)
    store.set_caught_up({0: 12.5})
    checked = 0
    for edges in _series_cases(rng, seconds):
        counts, caught_up, _ = store.count_series("org-series", edges)
        assert caught_up == 12.5
        want = [store.count("org-series", a, b - 1) for a, b in itertools.pairwise(edges)]
        assert counts == want, edges[:5]
        checked += len(counts)
    assert checked > 5_000


def test_the_series_script_touches_only_the_keys_it_declares(
    private_redis: RedisServer, key_prefix: str
) -> None:
    """Run as an ACL user allowed exactly the declared keys: any other key is NOPERM. On a
    Redis of its own: ACLs are per server, and the script's keys are the same in either mode
    (their one slot is checked here too)."""
    redis_client = redis.Redis.from_url(private_redis.url)
    store = CounterStore(redis_client, key_prefix, TOPIC, 3_600)
    rng = random.Random(14)
    base = keys.org_base(key_prefix, "org-acl")
    seconds = _random_counters(redis_client, base, rng)
    user, password = f"{key_prefix}-series", uuid.uuid4().hex
    limited = redis.Redis(
        host="127.0.0.1", port=private_redis.port, username=user, password=password
    )
    try:
        for edges in list(_series_cases(rng, seconds))[:40]:
            declared = keys.series_hashes(base, edges)
            assert len({redis.crc.key_slot(name.encode()) for name in declared}) == 1
            redis_client.acl_setuser(
                user,
                enabled=True,
                reset_keys=True,
                passwords=[f"+{password}"],
                keys=[
                    *declared,
                    keys.caught_up_key(key_prefix, TOPIC),
                    keys.generation_key(key_prefix),
                ],
                commands=["+evalsha_ro", "+hget", "+script|load", "+hgetall", "+ping"],
            )
            limited_store = CounterStore(limited, key_prefix, TOPIC, 3_600)
            counts, _, _ = limited_store.count_series("org-acl", edges)
            assert counts == store.count_series("org-acl", edges)[0]
        # The check bites: a key left out of the ACL is refused.
        edges = [NOW, NOW + 45 * 60, NOW + 86_400 + 17]
        declared = keys.series_hashes(base, edges)
        redis_client.acl_setuser(
            user, enabled=True, reset_keys=True, keys=declared[1:], commands=["+@all"]
        )
        with pytest.raises(redis.exceptions.ResponseError):
            CounterStore(limited, key_prefix, TOPIC, 3_600).count_series("org-acl", edges)
    finally:
        limited.close()
        redis_client.close()


def test_a_series_is_one_round_trip(
    store: CounterStore, redis_client: redis.Redis, request: pytest.FixtureRequest
) -> None:
    store.apply([inc("org-1", "a", NOW, 0)], {})
    store.count_series("org-1", [0, 1])  # the script is loaded now
    sends: list[int] = request.getfixturevalue("sends")
    days = [NOW - NOW % 86_400 + i * 86_400 - 3_600 for i in range(-400, 600)]
    sends.clear()
    counts, _, _ = store.count_series("org-1", days)
    # On a cluster the org's node and the shared slot's node are asked at once.
    assert len(sends) == (2 if is_cluster(redis_client) else 1)
    assert sum(counts) == 1 and len(counts) == 999


@pytest.mark.parametrize(
    "edges", [[5], [], [5, 5], [6, 5], [-1, 5], [0, MAX_SECOND + 2], [0, 1.5], [0, "9"]]
)
def test_invalid_series_edges_are_refused(store: CounterStore, edges: list[object]) -> None:
    with pytest.raises(ValueError):
        store.count_series("org-1", edges)  # type: ignore[arg-type]


def test_a_later_generation_counts_its_series_from_its_own_keys(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    """Generation 1 and 3 hold different events: each one's series counts only its own."""
    first = CounterStore(redis_client, key_prefix, TOPIC, 3_600)
    third = CounterStore(redis_client, key_prefix, TOPIC, 3_600, generation=3)
    first.apply([inc("org-g", "e-1", NOW, 0)], {0: 1})
    third.apply([inc("org-g", f"e-{n}", NOW + n * 3_600, n) for n in range(5)], {0: 5})
    edges = [NOW - 86_400, NOW, NOW + 86_400]
    assert first.count_series("org-g", edges)[0] == [0, 1]
    assert third.count_series("org-g", edges)[0] == [0, 5]
    assert third.count("org-g", NOW, NOW + 86_399) == 5
