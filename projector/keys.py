"""The Redis key layout: the one module that names every key, field and channel of the service.

Hash tags (Redis Cluster): every key of an org carries `{org_id}`, so one org's keys share a
slot and one Lua call may touch them all. Everything shared by all orgs carries `{#}` (an org
id cannot contain `#`): the topic's caught-up times, the snapshots with their indexes, the
generation record, the change channel. Partition positions are written once per Redis node,
each under a tag of that node's own slots (`{#s<slot>}`), so a node that loses writes also
loses its own positions record and the projector notices (see `projector.store`). `D` is a
day number (second // 86400), `B` a 32-day block number (D // 32, the level-4 index).

Generations (docs/design.md, "Rebuilding the projection"): the projection -- counters,
per-org offsets, dedup, partition positions, caught-up times -- exists once per generation,
under the generation's prefix `P` = `generation_prefix(prefix, G)`: the configured prefix
itself for generation 1 (the layout from before generations, so a deployment's data stays
live), `<prefix>:#G` for every later one (a configured prefix holds no `#`, so no other
deployment's keys can look like a generation's). Snapshots, the generation record and the
change channel are not per generation: they live under the configured prefix (`R` below).

Org keys (hashes):
- `P:{org}:d:D` — levels 0-2 of day D. Fields: second of day (0..86399); -1 - minute of day
  (-1..-1440); -1441 - hour of day (-1441..-1464). Values: counts.
- `P:{org}:b:B` — level 3 of block B. Fields: day of block (0..31).
- `P:{org}:u` — levels 4-7. Fields: 4 * index + (level - 4).
- `P:{org}:pos` — `<topic>:<partition>` -> highest offset applied for this org.
- `P:{org}:x:G:S` — dedup for generation G = seen_at // window and shard S (first byte of the
  digest % DEDUP_SHARDS): 16-byte blake2b digest of event_id -> seen_at when it was counted.
  Expires after the next generation ends (plus a day), or a day after its last write.

Shared keys of a generation:
- `P:{#}:caught_up:<topic>` — partition -> caught-up epoch seconds (float, only ever raised),
  `partitions` -> the topic's partition count, `min` -> the topic's caught_up_at.
- `P:{T}:pos:<topic>` — partition -> next offset to read (the whole group's position; only
  ever raised, but for Redis losing writes, which the partition's owner then notices). One per
  Redis node: T is `#` on a single Redis, `#s<slot>` of each primary's first slot on a cluster.

Shared keys of the deployment:
- `R:{#}:generation` — the generation record (`projector.generation`): the live generation,
  a rebuild's generation, phase and owner, a retired generation still being deleted;
  `R:{#}:generation:members` — live projector instance id -> the generation it applies;
  `R:{#}:generation:rebuild` — the running rebuild's heartbeat and progress.
- `R:{#}:snapshots` — snapshot id -> its record (`org|start|end|count|complete|at|score`);
  `R:{#}:snapshots:by-range` — `org|start|end` -> id (the unique index);
  `R:{#}:snapshots:all`, `R:{#}:snapshots:complete:C`, `R:{#}:snapshots:org:<org>`,
  `R:{#}:snapshots:org-complete:C:<org>` — sorted sets of ids scored by snapshot time (ms),
  C = the stored is_complete (0 | 1). One slot for all snapshots: writes stay atomic (one
  snapshot per (org, range), true totals for every filter) and the load is the request rate.
- `R:{#}:changes` — the sharded pub/sub channel of change notices (`projector.store`).

Why this shape: every field name is a small integer (Redis stores those in 1-4 bytes inside
a listpack) and a day's seconds, minutes and hours share one hash, so for 100 events per org
per day the key overhead is paid once per org-day and the hash holds about 220 entries. That
stays listpack-encoded under Redis's default `hash-max-listpack-entries 512` (our redis.conf
and docker-compose set it explicitly). Measured on Redis 7.0 for 1,000 orgs x 30 days x 100
events/org/day: ~14 bytes per event for counters and ~26 bytes per event held in the dedup
window. A smaller setting stays correct; busier hashes are then stored as hashtables, at
several times the memory.

The Lua scripts compute the same fields from the constants `lua_constants()` gives them;
tests/support/oracles.py holds the Python twin the tests compare them with. `LEVEL_FIELDS`
states the same layout as data (which hash each level lives in, its field formula); the
series script (lua/series.lua) reads it from the injected constants, and `series_hashes`
names the hashes it may read.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from functools import cache
from typing import NamedTuple

from redis.crc import REDIS_CLUSTER_HASH_SLOTS as CLUSTER_SLOTS
from redis.crc import key_slot

from projector.buckets import DAY, LEVEL_SIZES

DEDUP_SHARDS = 4
MINUTES_PER_DAY = 1_440
HOURS_PER_DAY = 24
DAYS_PER_BLOCK = LEVEL_SIZES[4] // DAY
_ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}").fullmatch
_PREFIX = re.compile(r"[^{}\s#]+").fullmatch
# The generation whose keys have no generation segment: the layout from before generations.
FIRST_GENERATION = 1


def check_prefix(prefix: str) -> str:
    """The prefix, or ValueError when it is empty or holds braces, blanks or `#` (reserved
    for the shared hash tag and for generation prefixes)."""
    if not isinstance(prefix, str) or not _PREFIX(prefix):
        raise ValueError(f"invalid key prefix {prefix!r}")
    return prefix


def check_generation(generation: int) -> int:
    """The generation number, or ValueError when it is not an int >= FIRST_GENERATION."""
    if type(generation) is not int or generation < FIRST_GENERATION:
        raise ValueError(f"invalid generation {generation!r}")
    return generation


def generation_prefix(prefix: str, generation: int) -> str:
    """Where generation G's keys start: `prefix` for the first generation, `prefix:#G` after."""
    check_prefix(prefix)
    if check_generation(generation) == FIRST_GENERATION:
        return prefix
    return f"{prefix}:#{generation}"


def generation_patterns(prefix: str, generation: int) -> list[str]:
    """SCAN MATCH patterns that together match every key of one generation and no other key
    (none of another generation, no snapshot, not the generation record)."""
    if check_generation(generation) != FIRST_GENERATION:
        return [f"{_glob_escape(generation_prefix(prefix, generation))}:*"]
    glob = _glob_escape(check_prefix(prefix))
    return [
        f"{glob}:{{[A-Za-z0-9]*",  # org keys: an org id starts with a letter or digit
        f"{glob}:{{{SHARED_TAG}}}:pos:*",
        f"{glob}:{{{SHARED_TAG}s*}}:pos:*",
        f"{glob}:{{{SHARED_TAG}}}:caught_up:*",
    ]


def _glob_escape(text: str) -> str:
    """`text` matched literally by a Redis glob pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def org_base(prefix: str, org_id: str) -> str:
    """`P:{org}:` — the start of every key of the org; ValueError for a malformed org_id."""
    if not isinstance(org_id, str) or not _ORG_ID(org_id):
        raise ValueError(f"invalid org_id {org_id!r}")
    return f"{prefix}:{{{org_id}}}:"


def day_key(base: str, day: int) -> str:
    """The org-day hash holding levels 0-2 (seconds, minutes, hours)."""
    return f"{base}d:{day}"


def block_key(base: str, block: int) -> str:
    """The org's 32-day block hash holding level 3 (days)."""
    return f"{base}b:{block}"


def upper_key(base: str) -> str:
    """The org's hash holding levels 4-7."""
    return f"{base}u"


def offsets_key(base: str) -> str:
    """The org's applied offsets, per `<topic>:<partition>`."""
    return f"{base}pos"


def dedup_key(base: str, generation: int, shard: int) -> str:
    """One shard of the org's dedup hash for one generation of the window."""
    return f"{base}x:{generation}:{shard}"


def offset_field(topic: str, partition: int) -> str:
    """The field of `offsets_key` for one partition of a topic."""
    return f"{topic}:{partition}"


SHARED_TAG = "#"


def shared_base(prefix: str) -> str:
    """`P:{#}:` — the start of every key shared by all orgs (one Redis Cluster slot)."""
    return f"{prefix}:{{{SHARED_TAG}}}:"


def positions_key(prefix: str, topic: str, tag: str = SHARED_TAG) -> str:
    """A partition -> next offset hash; `tag` places it (see `node_tag`)."""
    return f"{prefix}:{{{tag}}}:pos:{topic}"


def caught_up_key(prefix: str, topic: str) -> str:
    """The partition -> caught-up time hash (plus the `partitions` and `min` fields)."""
    return f"{shared_base(prefix)}caught_up:{topic}"


@cache
def node_tag(slot: int) -> str:
    """A hash tag whose key slot is `slot`: a Redis Cluster node's positions record lives
    under the tag of the first slot it serves."""
    if not 0 <= slot < CLUSTER_SLOTS:
        raise ValueError(f"no slot {slot}")
    for n in itertools.count():
        tag = f"{SHARED_TAG}s{n}"
        if key_slot(tag.encode()) == slot:
            return tag
    raise AssertionError("unreachable")


def generation_key(prefix: str) -> str:
    """The generation record (a hash; `projector.generation` names its fields)."""
    return f"{shared_base(prefix)}generation"


def generation_members_key(prefix: str) -> str:
    """Live projector instance id -> the generation it applies (its acknowledgement)."""
    return f"{generation_key(prefix)}:members"


def rebuild_key(prefix: str) -> str:
    """The running rebuild's heartbeat and progress (a hash)."""
    return f"{generation_key(prefix)}:rebuild"


# The field of `generation_key` naming the live generation (read by the snapshot scripts).
LIVE_FIELD = "live"


def snapshots_key(prefix: str) -> str:
    """Snapshot id -> its record."""
    return f"{shared_base(prefix)}snapshots"


def snapshot_index_keys(prefix: str) -> dict[str, str]:
    """The snapshots' unique index and the org-independent sorted sets, by role."""
    base = f"{shared_base(prefix)}snapshots:"
    return {
        "by_range": f"{base}by-range",
        "all": f"{base}all",
        "complete:0": f"{base}complete:0",
        "complete:1": f"{base}complete:1",
    }


def snapshot_org_keys(prefix: str, org_id: str) -> dict[str, str]:
    """One org's sorted sets of snapshots: all of them, and per stored is_complete."""
    org_base(prefix, org_id)  # validates the org id
    base = f"{shared_base(prefix)}snapshots:"
    return {
        "org": f"{base}org:{org_id}",
        "org-complete:0": f"{base}org-complete:0:{org_id}",
        "org-complete:1": f"{base}org-complete:1:{org_id}",
    }


CAUGHT_UP_PARTITIONS_FIELD = "partitions"
# The topic's caught_up_at, kept in the same hash by the writer (projector/lua/caught_up.lua).
CAUGHT_UP_MIN_FIELD = "min"

_KIND = re.compile(r"^[^{]*\{[^#}][^}]*\}:(d|b|u|pos|x)(?::|$)")
_KIND_NAMES = {"d": "counters", "b": "counters", "u": "counters", "x": "dedup", "pos": "offsets"}


def kind_of(key: str) -> str:
    """What a projector key holds: counters, dedup, offsets, or other (positions, caught-up)."""
    match = _KIND.match(key)
    return _KIND_NAMES[match.group(1)] if match else "other"


def changes_channel(prefix: str) -> str:
    """The (sharded) pub/sub channel of change notifications."""
    return f"{shared_base(prefix)}changes"


def count_keys(base: str, start: int, end: int) -> tuple[str, ...]:
    """The hashes `lua/count.lua` reads for [start, end]: both edges' day and block, upper."""
    first_day, last_day = start // DAY, end // DAY
    return (
        day_key(base, first_day),
        day_key(base, last_day),
        block_key(base, first_day // DAYS_PER_BLOCK),
        block_key(base, last_day // DAYS_PER_BLOCK),
        upper_key(base),
    )


class LevelFields(NamedTuple):
    """Where one level's counters live: `kind` of hash (DAY_HASH, BLOCK_HASH, UPPER_HASH),
    `per_hash` consecutive buckets per hash (0: one hash holds them all), and the field of
    bucket `index`: base + step * (index - hash number * per_hash)."""

    kind: int
    per_hash: int
    base: int
    step: int


DAY_HASH, BLOCK_HASH, UPPER_HASH = 1, 2, 3
_TOP = len(LEVEL_SIZES) - 1
_UPPER_LEVELS = len(LEVEL_SIZES) - 4  # levels 4..TOP share the upper hash, interleaved
LEVEL_FIELDS: tuple[LevelFields, ...] = (
    LevelFields(DAY_HASH, DAY, 0, 1),  # seconds of the day: 0..86399
    LevelFields(DAY_HASH, MINUTES_PER_DAY, -1, -1),  # minutes: -1..-1440
    LevelFields(DAY_HASH, HOURS_PER_DAY, -1 - MINUTES_PER_DAY, -1),  # hours: -1441..-1464
    LevelFields(BLOCK_HASH, DAYS_PER_BLOCK, 0, 1),  # days of the block: 0..31
    *(LevelFields(UPPER_HASH, 0, level - 4, _UPPER_LEVELS) for level in range(4, _TOP + 1)),
)


def _hash_key(base: str, kind: int, number: int) -> str:
    if kind == DAY_HASH:
        return day_key(base, number)
    if kind == BLOCK_HASH:
        return block_key(base, number)
    return upper_key(base)


def series_hashes(base: str, seconds: Iterable[int]) -> list[tuple[str, int, int]]:
    """(key, kind, number) of every hash lua/series.lua may read for prefix counts at
    `seconds`: for each second not aligned to level L + 1, the hashes of its level-L and
    level-(L + 1) buckets (their siblings share them: a hash never splits a parent bucket)."""
    points = list(seconds)
    found: set[tuple[int, int]] = set()
    for level in range(_TOP):
        parent = LEVEL_SIZES[level + 1]
        ragged = [x for x in points if x % parent]
        for lvl in (level, level + 1):
            kind, per_hash = LEVEL_FIELDS[lvl].kind, LEVEL_FIELDS[lvl].per_hash
            if not per_hash:
                if ragged:
                    found.add((kind, 0))
                continue
            span = LEVEL_SIZES[lvl] * per_hash
            found.update((kind, x // span) for x in ragged)
    found.add((UPPER_HASH, 0))  # the top level's prefix
    return [(_hash_key(base, kind, number), kind, number) for kind, number in sorted(found)]


def lua_constants() -> dict[str, object]:
    """What the Lua scripts must agree on with this layout, injected into each at load time."""
    return {
        "LEVEL_SIZES": list(LEVEL_SIZES),
        "DAY": DAY,
        "MINUTES_PER_DAY": MINUTES_PER_DAY,
        "HOURS_PER_DAY": HOURS_PER_DAY,
        "DAYS_PER_BLOCK": DAYS_PER_BLOCK,
        "UPPER_LEVELS": len(LEVEL_SIZES) - 4,
        "FIRST_GENERATION": FIRST_GENERATION,
        "LIVE_FIELD": LIVE_FIELD,
        # LEVEL_FIELDS, one list per column (1-based in Lua: level L at [L + 1]).
        "FIELD_KIND": [f.kind for f in LEVEL_FIELDS],
        "FIELD_PER_HASH": [f.per_hash for f in LEVEL_FIELDS],
        "FIELD_BASE": [f.base for f in LEVEL_FIELDS],
        "FIELD_STEP": [f.step for f in LEVEL_FIELDS],
    }
