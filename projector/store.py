"""Redis reads and writes of the projection: counters, offsets, positions, change notices.

Exactly once: one Lua call per org applies its increments with its highest applied offset
per partition; increments at or below it are skipped, so replaying records is harmless.
Duplicates: an event_id the org had counted at record time t0 makes one at t a duplicate
when |t - t0| <= window (kept per generation of `window` seconds; see projector.keys).
Errors: redis-py's exceptions propagate unchanged (the consumer retries on ConnectionError
/ TimeoutError, apply being idempotent; the API answers 503); `StoreError` is the base of
this module's own. Needs Redis >= 7.0; the Lua lives in projector/lua (package data).

On a Redis Cluster every org's calls go to the org's node (`projector.routing`), and the
partition positions are written to a record on every primary after the batch's calls there:
a node that comes back without its last writes (restarted from its AOF, or a replica that
took over before it had them) comes back with its own older record, and `positions` is the
least over all nodes, so the projector replays what that node lost.
"""

from __future__ import annotations

import itertools
import json
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import blake2b
from typing import Any, NamedTuple

from events.redis_client import is_cluster
from projector import keys, scripts
from projector.buckets import DAY, MAX_SECOND, check_range
from projector.routing import call, execute

# Dedup hashes outlive their last use by this much wall-clock time (see lua/apply.lua).
DEDUP_SLACK_SECONDS = DAY
# Most increments one Lua call applies. A script blocks Redis while it runs (~20 µs an
# event): a busy org's share of a large batch is cut into calls of this many, in batch
# order, so API reads wait ~20 ms at worst. Safe because each call stores the highest
# offset it applied per partition and the next holds only later offsets.
APPLY_CHUNK = 1000


class StoreError(Exception):
    """Base of the errors this module raises itself."""


class PositionsDiverged(StoreError):
    """Redis holds other partition positions than the caller expects (lost writes, a rival)."""

    def __init__(self, stored: Mapping[int, int | None], expected: Mapping[int, int | None]):
        super().__init__(f"stored positions {dict(stored)} differ from expected {dict(expected)}")
        self.stored = dict(stored)
        self.expected = dict(expected)


class Increment(NamedTuple):
    """One record.created event to count: `second` is occurred_at, `seen_at` the record time."""

    org_id: str
    event_id: str
    second: int
    partition: int
    offset: int
    seen_at: int


class PreparedApply(NamedTuple):
    """A batch's Lua calls, built ahead of `CounterStore.apply`; `orgs[i]` made call i."""

    orgs: list[str]
    commands: list[tuple[Any, ...]]


@dataclass(frozen=True)
class ApplyResult:
    """What a batch did; `orgs` spans the seconds applied now or by an earlier attempt."""

    applied: int = 0
    duplicates: int = 0
    already_applied: int = 0
    orgs: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """A change notice: per org the (min, max) second touched, and the global caught_up_at;
    `generation` when a switch made that generation live (every count may have changed)."""

    orgs: Mapping[str, tuple[int, int]]
    caught_up_at: float | None
    generation: int | None = None


# One increment inside apply.lua's packed ARGV: digest, second, partition, offset, seen_at.
_RECORD = struct.Struct("<16sqiqq")


@lru_cache(maxsize=65_536)
def _org_base(prefix: str, org_id: str) -> str:
    """keys.org_base, memoised: the apply path asks once per org per batch."""
    return keys.org_base(prefix, org_id)


def _float(value: bytes | str | None) -> float | None:
    return None if value is None else float(value)


class CounterStore:
    """One generation of the projection in Redis (the first unless told): the projector and a
    rebuild write it, the API reads the live one (`projector.live`)."""

    def __init__(
        self,
        redis_client: Any,
        prefix: str,
        topic: str,
        dedup_window_seconds: int = 7 * DAY,
        *,
        generation: int = keys.FIRST_GENERATION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if dedup_window_seconds < 1:
            raise ValueError("dedup_window_seconds must be >= 1")
        self._redis = redis_client
        self._prefix = keys.check_prefix(prefix)
        self.generation = generation
        # Every key of the projection derives from the generation's prefix; snapshots, the
        # generation record and the change channel from the deployment's.
        self._base = keys.generation_prefix(prefix, generation)
        self._topic = topic
        self._window = dedup_window_seconds
        self._clock = clock
        self._positions_key = keys.positions_key(self._base, topic)
        self._slot_map: object = None
        self._cluster_position_keys: list[str] = []
        self._caught_up_key = keys.caught_up_key(self._base, topic)
        self.channel = keys.changes_channel(prefix)
        self._marked = False

    # -- write side ---------------------------------------------------------------------

    def apply(
        self,
        increments: Sequence[Increment],
        partition_positions: Mapping[int, int],
        expected_positions: Mapping[int, int | None] | None = None,
        prepared: PreparedApply | None = None,
    ) -> ApplyResult:
        """Count a batch exactly once, then store the partition positions.

        One Lua call per org (per APPLY_CHUNK of its increments), all in one pipeline;
        the positions are written only after every call succeeded. With
        `expected_positions` (partition -> the position the caller believes Redis holds,
        None for none) the stored ones are checked first and PositionsDiverged is raised
        before anything is written when they differ (unless they already equal
        `partition_positions`: an earlier attempt finished). `prepared` is
        `prepare(increments)`, when the caller built it ahead (the projector does, while
        Redis applies the batch before).
        """
        if prepared is None:
            prepared = self.prepare(increments)
        if expected_positions is not None:
            self._check_positions(expected_positions, partition_positions)
        self._mark_layout()
        replies = execute(self._redis, prepared.commands)
        if partition_positions:
            # Only once every call succeeded, and forward only (lua/advance.lua), on every node.
            pairs = [str(x) for item in partition_positions.items() for x in item]
            execute(
                self._redis,
                [("EVALSHA", scripts.ADVANCE.sha, 1, key, *pairs) for key in self._position_keys()],
            )
        applied = duplicates = skipped = 0
        orgs: dict[str, tuple[int, int]] = {}
        for org, reply in zip(prepared.orgs, replies, strict=True):
            n_applied, n_dups, n_skipped, lo, hi = map(int, reply.split())
            applied += n_applied
            duplicates += n_dups
            skipped += n_skipped
            if lo >= 0:
                seen = orgs.get(org)
                orgs[org] = (lo, hi) if seen is None else (min(seen[0], lo), max(seen[1], hi))
        return ApplyResult(applied, duplicates, skipped, orgs)

    def _mark_layout(self) -> None:
        """Before this store's first write: mark its generation as written in keys.LAYOUT
        unless it is marked already (`projector.layout`; the projector and a rebuild check
        the mark before they write, so this only labels what this code writes)."""
        if not self._marked:
            layout_key = keys.layout_key(self._prefix)
            self._redis.hsetnx(layout_key, str(self.generation), str(keys.LAYOUT))
            self._marked = True

    def prepare(self, increments: Sequence[Increment]) -> PreparedApply:
        """The Lua calls that apply `increments`: pure CPU, no Redis."""
        groups: dict[str, list[Increment]] = {}
        for inc in increments:
            group = groups.get(inc[0])
            if group is None:
                groups[inc[0]] = [inc]
            else:
                group.append(inc)
        now = int(self._clock())
        orgs: list[str] = []
        commands: list[tuple[Any, ...]] = []
        for org, group in groups.items():
            for i in range(0, len(group), APPLY_CHUNK):
                orgs.append(org)
                commands.append(self._apply_command(org, group[i : i + APPLY_CHUNK], now))
        return PreparedApply(orgs, commands)

    def _apply_command(self, org: str, incs: list[Increment], now: int) -> tuple[Any, ...]:
        """EVALSHA arguments of one org's call (the ARGV layout is in lua/apply.lua)."""
        base = _org_base(self._base, org)
        window = self._window
        gens: set[int] = set()
        parts: set[int] = set()
        records: list[bytes] = []
        pack = _RECORD.pack
        low, high = MAX_SECOND, 0
        for _, event_id, second, partition, offset, seen_at in incs:
            digest = blake2b(event_id.encode(), digest_size=16).digest()
            low, high = min(low, second), max(high, second)
            gens.add(seen_at // window)
            parts.add(partition)
            records.append(pack(digest, second, partition, offset, seen_at))
        if low < 0 or high > MAX_SECOND:
            raise ValueError(f"an event second of {org!r} is outside 0..{MAX_SECOND}")
        # Generations g - 1 and g + 1 are consulted too: a duplicate may straddle a boundary.
        lookups = sorted({gen + step for gen in gens for step in (-1, 0, 1)})
        key_list = [keys.offsets_key(base), keys.upper_key(base)]
        key_list += [keys.dedup_directory_key(base, gen) for gen in lookups]
        numbers = (window, now, DEDUP_SLACK_SECONDS, len(parts), len(lookups), *parts)
        header = struct.pack(f"<qqqii{len(parts)}i{len(lookups)}q", *numbers, *lookups)
        fields = [keys.offset_field(self._topic, partition) for partition in parts]
        packed = b"".join([header, *records])
        return ("EVALSHA", scripts.APPLY.sha, len(key_list), *key_list, packed, *fields)

    def _check_positions(
        self, expected: Mapping[int, int | None], target: Mapping[int, int]
    ) -> None:
        held = self.positions()
        stored = {p: held.get(p) for p in expected}
        if stored != dict(expected) and any(stored[p] != target.get(p) for p in expected):
            raise PositionsDiverged(stored, expected)

    def positions(self) -> dict[int, int]:
        """Partition -> next offset to read, as stored for the topic: on a cluster the least
        over every node's record, and nothing for a partition a node has no record of."""
        records = execute(self._redis, [("HGETALL", key) for key in self._position_keys()])
        least: dict[int, int] = {}
        for n, raw in enumerate(records):
            found = {int(p): int(o) for p, o in raw.items()}
            if n:
                found = {p: min(o, found[p]) for p, o in least.items() if p in found}
            least = found
        return least

    def _position_keys(self) -> list[str]:
        """The positions records: one on a single Redis, one per primary of a cluster."""
        if not is_cluster(self._redis):
            return [self._positions_key]
        cache = self._redis.nodes_manager.slots_cache
        if self._slot_map is not cache:
            firsts: dict[str, int] = {}
            for slot, nodes in cache.items():
                name = nodes[0].name
                firsts[name] = min(slot, firsts.get(name, slot))
            self._cluster_position_keys = [
                keys.positions_key(self._base, self._topic, keys.node_tag(slot))
                for slot in sorted(firsts.values())
            ]
            self._slot_map = cache
        return self._cluster_position_keys

    def set_caught_up(
        self, partition_times: Mapping[int, float], partitions: int | None = None
    ) -> float | None:
        """Raise per-partition caught-up times (never lowered) and store the topic's partition
        count (0 / None: keep what is stored); return the resulting caught_up_at."""
        self._mark_layout()
        pairs = [x for p, t in partition_times.items() for x in (str(p), repr(float(t)))]
        fields = (keys.CAUGHT_UP_PARTITIONS_FIELD, keys.CAUGHT_UP_MIN_FIELD, int(partitions or 0))
        command = ("EVALSHA", scripts.CAUGHT_UP.sha, 1, self._caught_up_key, *fields, *pairs)
        (least,) = execute(self._redis, [command])
        return None if least is None else float(least)

    def publish_changes(self, result: ApplyResult, caught_up_at: float | None) -> int:
        """SPUBLISH which orgs' counts may have changed (and caught_up_at); receivers count."""
        orgs = {org: [lo, hi] for org, (lo, hi) in result.orgs.items()}
        payload = json.dumps({"orgs": orgs, "caught_up_at": caught_up_at}, separators=(",", ":"))
        return int(self._redis.spublish(self.channel, payload))

    def publish_progress(self, caught_up_at: float | None) -> int:
        """SPUBLISH a change of caught_up_at alone."""
        return self.publish_changes(ApplyResult(), caught_up_at)

    def publish_switch(self) -> int:
        """SPUBLISH that this store's generation is live now (readers learn it, recount)."""
        payload = {"orgs": {}, "caught_up_at": self.caught_up_at(), "generation": self.generation}
        return int(self._redis.spublish(self.channel, json.dumps(payload, separators=(",", ":"))))

    def caught_up_times(self) -> tuple[dict[int, float], int | None]:
        """The per-partition caught-up times stored, and the topic's partition count."""
        raw = self._redis.hgetall(self._caught_up_key)
        times: dict[int, float] = {}
        count = None
        for name, value in raw.items():
            field = name.decode() if isinstance(name, bytes) else name
            if field == keys.CAUGHT_UP_PARTITIONS_FIELD:
                count = int(value)
            elif field != keys.CAUGHT_UP_MIN_FIELD:
                times[int(field)] = float(value)
        return times, count

    # -- read side ----------------------------------------------------------------------

    def caught_up_at(self) -> float | None:
        """The topic's caught_up_at as the projectors stored it (lua/caught_up.lua): the least
        caught-up time over its partitions; None until every partition has one."""
        return _float(self._redis.hget(self._caught_up_key, keys.CAUGHT_UP_MIN_FIELD))

    def count(self, org_id: str, start: int, end: int) -> int:
        """Events of `org_id` with start <= second <= end, in one round trip."""
        return int(call(self._redis, *self._count_command(org_id, start, end)))

    def count_and_caught_up(self, org_id: str, start: int, end: int) -> tuple[int, float | None]:
        """The count and the global caught_up_at, read in one round trip."""
        count, least, _ = self.count_caught_up_and_live(org_id, start, end)
        return count, least

    def count_caught_up_and_live(
        self, org_id: str, start: int, end: int
    ) -> tuple[int, float | None, int]:
        """The count, caught_up_at and the live generation, in one round trip. On one Redis the
        generation is read after the count, so when it is this store's the count was of the
        live generation; on a cluster (another node) it is as of about then."""
        count, least, live = execute(
            self._redis,
            [
                self._count_command(org_id, start, end),
                ("HGET", self._caught_up_key, keys.CAUGHT_UP_MIN_FIELD),
                ("HGET", keys.generation_key(self._prefix), keys.LIVE_FIELD),
            ],
        )
        return int(count), _float(least), keys.FIRST_GENERATION if live is None else int(live)

    def count_series(
        self, org_id: str, edges: Sequence[int]
    ) -> tuple[list[int], float | None, int]:
        """Events of `org_id` in [edges[i], edges[i + 1] - 1] for each i, the global
        caught_up_at and the live generation, in one round trip. `edges`: increasing, from
        >= 0 to <= MAX_SECOND + 1.

        caught_up_at is read first, so every event it vouches for is in the counts; the live
        generation is read last, as in count_caught_up_and_live."""
        points = list(edges)
        if len(points) < 2 or any(type(x) is not int for x in points):
            raise ValueError("a series needs at least two integer edges")
        if not (points[0] >= 0 and points[-1] <= MAX_SECOND + 1):
            raise ValueError(f"series edges must lie within 0..{MAX_SECOND + 1}")
        if any(a >= b for a, b in itertools.pairwise(points)):
            raise ValueError("series edges must increase")
        names = keys.series_hashes(_org_base(self._base, org_id), points)
        packed = struct.pack(f"<i{len(points)}q", len(points), *points)
        least, counts, live = execute(
            self._redis,
            [
                ("HGET", self._caught_up_key, keys.CAUGHT_UP_MIN_FIELD),
                ("EVALSHA_RO", scripts.SERIES.sha, len(names), *names, packed),
                ("HGET", keys.generation_key(self._prefix), keys.LIVE_FIELD),
            ],
        )
        generation = keys.FIRST_GENERATION if live is None else int(live)
        return [int(c) for c in counts], _float(least), generation

    def count_keys(self, org_id: str, start: int, end: int) -> list[str]:
        """The hashes the count script reads for [start, end] of the org (its KEYS)."""
        check_range(start, end)
        return list(keys.count_keys(_org_base(self._base, org_id), start, end))

    @property
    def caught_up_field(self) -> tuple[str, str]:
        """(key, field) holding the topic's caught_up_at, for scripts that decide is_complete."""
        return self._caught_up_key, keys.CAUGHT_UP_MIN_FIELD

    @property
    def prefix(self) -> str:
        """The key prefix of this store's deployment."""
        return self._prefix

    def _count_command(self, org_id: str, start: int, end: int) -> tuple[Any, ...]:
        names = self.count_keys(org_id, start, end)
        return ("EVALSHA_RO", scripts.COUNT.sha, len(names), *names, start, end)


def decode_change(message: Mapping[str, Any] | bytes | str) -> Change:
    """The Change in a pub/sub message (redis-py's dict, or its data); StoreError if malformed."""
    data = message.get("data") if isinstance(message, Mapping) else message
    try:
        body = json.loads(data)  # type: ignore[arg-type]
        orgs = {str(org): (int(lo), int(hi)) for org, (lo, hi) in body["orgs"].items()}
        caught = body["caught_up_at"]
        generation = body.get("generation")
        return Change(
            orgs,
            None if caught is None else float(caught),
            None if generation is None else keys.check_generation(int(generation)),
        )
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise StoreError(f"malformed change message: {data!r:.200}") from exc
