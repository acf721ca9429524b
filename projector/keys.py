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
- `P:{org}:u` — the org's top-level buckets (TREE_SIZES[TREE_TOP], ~359 years): top index
  -> count. Always kept; the root of every count.
- `P:{org}:n:L:I` — a node of the org's count tree: it covers
  [I * TREE_SIZES[L], (I + 1) * TREE_SIZES[L]) (1 <= L <= TREE_TOP). A *leaf* holds the
  events under it as second offset within the node (0 .. TREE_SIZES[L] - 1) -> count. An
  *interior* node holds field `i` (NODE_MARK) and, per child j (a level-(L - 1) node,
  0 .. ratio - 1), j -> the child's total. A leaf that holds
  more than SPLIT_AT fields after a write is split by apply.lua: its seconds move into
  leaves of its children, it keeps their totals. Level-1 nodes (a minute, <= 60 fields)
  are always leaves. So a quiet org keeps one leaf per 32 days or more, a busy one a leaf
  per minute, and no hash holds more than SPLIT_AT counters once a write is done
  (docs/design.md, "Counter tree").
- `P:{org}:pos` — `<topic>:<partition>` -> highest offset applied for this org.
- `P:{org}:x:G` — the directory of the dedup table of generation G = seen_at // window (an
  extendible hash table; a string of 2^D bytes, byte i = the depth l of the bucket holding
  the digests whose top D bits are i).
- `P:{org}:x:G:l:b` — a dedup bucket: digests whose top l bits are b; the first
  DEDUP_FIELD_BYTES of the blake2b digest of event_id -> seen_at - G * window when it was
  counted. Over DEDUP_SPLIT_AT fields it splits into (l + 1, 2b) and (l + 1, 2b + 1).
  Both expire after the next generation ends (plus a day), or a day after their last write.

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
  `R:{#}:generation:rebuild` — the running rebuild's heartbeat and progress;
  `R:{#}:generation:layout` — generation -> the key layout (LAYOUT) it is written in.
- `R:{#}:snapshots` — snapshot id -> its record (`org|start|end|count|complete|at|score`);
  `R:{#}:snapshots:by-range` — `org|start|end` -> id (the unique index);
  `R:{#}:snapshots:all`, `R:{#}:snapshots:complete:C`, `R:{#}:snapshots:org:<org>`,
  `R:{#}:snapshots:org-complete:C:<org>` — sorted sets of ids scored by snapshot time (ms),
  C = the stored is_complete (0 | 1). One slot for all snapshots: writes stay atomic (one
  snapshot per (org, range), true totals for every filter) and the load is the request rate.
- `R:{#}:changes` — the sharded pub/sub channel of change notices (`projector.store`).

Why this shape: every field name is a small integer (Redis stores those in 1-4 bytes inside
a listpack), every hash stays below SPLIT_AT entries whatever the density, so it stays
listpack-encoded as long as `hash-max-listpack-entries` >= SPLIT_AT (LISTPACK_ASSUMED; our
redis.conf and docker-compose set 512; the projector checks at start). A smaller setting
stays correct; the hashes are then stored as hashtables, at several times the memory.

The Lua scripts name nodes from the constants `lua_constants()` gives them (NODE_KEY is
`node_key`'s format); tests/support/oracles.py holds the Python twin the tests compare them
with. `count_keys` and `series_hashes` name every node the read scripts may read.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS as CLUSTER_SLOTS
from redis.crc import key_slot

from projector.buckets import DAY, LEVEL_SIZES

# Bytes of the event id's blake2b digest kept as a dedup field (docs/design.md, "Dedup
# window": the collision bound).
DEDUP_FIELD_BYTES = 8
# A dedup bucket holding more fields than this after a write splits in two.
DEDUP_SPLIT_AT = 256
# The count tree's node sizes (seconds), each a small multiple of the one below (at most 8,
# beyond the minute), so a split leaf's children are never many nearly empty hashes: with
# SPLIT_AT, a split costs at most ~8 keys per SPLIT_AT events (docs/design.md). Node level L
# covers [index * TREE_SIZES[L], ...); level 0 is the second, the top is the counters' top.
TREE_SIZES: tuple[int, ...] = (
    1,
    60,
    300,
    900,
    3_600,
    14_400,
    DAY,
    4 * DAY,
    32 * DAY,
    256 * DAY,
    2_048 * DAY,
    16_384 * DAY,
    LEVEL_SIZES[-1],  # 131,072 days: the upper hash holds at most 23 of them
)
TREE_TOP = len(TREE_SIZES) - 1
# A leaf of the count tree holding more fields than this after a write is split.
SPLIT_AT = 256
# What the layout assumes of Redis: hashes of up to this many entries stay listpacks.
LISTPACK_ASSUMED = {"hash-max-listpack-entries": 512, "hash-max-listpack-value": 64}
# The field that marks an interior node of the count tree.
NODE_MARK = "i"
# Keys the count script reads: the upper hash, then the path of nodes (TREE_TOP .. 1)
# over each of its two edges.
COUNT_KEYS = 1 + 2 * TREE_TOP
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


def node_key(base: str, level: int, index: int) -> str:
    """The count-tree node covering bucket (level, index) of the org at `base`."""
    return f"{base}n:{level}:{index}"


def upper_key(base: str) -> str:
    """The org's hash of top-level bucket totals."""
    return f"{base}u"


def offsets_key(base: str) -> str:
    """The org's applied offsets, per `<topic>:<partition>`."""
    return f"{base}pos"


def dedup_directory_key(base: str, generation: int) -> str:
    """The directory of the org's dedup table for one generation of the window (a string:
    byte i is the depth of the bucket holding digests whose top bits are i)."""
    return f"{base}x:{generation}"


def dedup_key(base: str, generation: int, depth: int, bits: int) -> str:
    """The dedup bucket of one generation holding digests whose top `depth` bits are `bits`."""
    return f"{base}x:{generation}:{depth}:{bits}"


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


def layout_key(prefix: str) -> str:
    """Generation number -> the key layout (LAYOUT) its keys were written in (a hash)."""
    return f"{generation_key(prefix)}:layout"


# The key layout this code writes and reads: 2 = the count tree and the extendible dedup table
# (1, unmarked: the day/block hashes and sharded dedup of before). `projector.layout` keeps
# this code off a generation written in another one.
LAYOUT = 2


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

_KIND = re.compile(r"^[^{]*\{[^#}][^}]*\}:(n|u|pos|x)(?::|$)")
_KIND_NAMES = {"n": "counters", "u": "counters", "x": "dedup", "pos": "offsets"}


def kind_of(key: str) -> str:
    """What a projector key holds: counters, dedup, offsets, or other (positions, caught-up)."""
    match = _KIND.match(key)
    return _KIND_NAMES[match.group(1)] if match else "other"


def changes_channel(prefix: str) -> str:
    """The (sharded) pub/sub channel of change notifications."""
    return f"{shared_base(prefix)}changes"


def prefix_path(base: str, second: int) -> list[str]:
    """The nodes (levels TREE_TOP .. 1) whose bucket holds `second`: those a count of the
    events before `second` may read."""
    return [node_key(base, level, second // TREE_SIZES[level]) for level in range(TREE_TOP, 0, -1)]


def count_keys(base: str, start: int, end: int) -> tuple[str, ...]:
    """The COUNT_KEYS hashes `lua/count_lib.lua` may read for [start, end]: the upper hash,
    the path over `start` and the path over `end + 1`."""
    return (upper_key(base), *prefix_path(base, start), *prefix_path(base, end + 1))


def series_hashes(base: str, seconds: Iterable[int]) -> list[str]:
    """Every hash lua/series.lua may read for prefix counts at `seconds`: the upper hash,
    and for each second the nodes of its path whose bucket it does not start (a count stops
    at the first level where the second is aligned)."""
    found: dict[str, None] = {upper_key(base): None}
    for x in seconds:
        for level in range(TREE_TOP, 0, -1):
            size = TREE_SIZES[level]
            if x % size == 0:
                break
            found[node_key(base, level, x // size)] = None
    return list(found)


def lua_constants() -> dict[str, object]:
    """What the Lua scripts must agree on with this layout, injected into each at load time."""
    return {
        "TREE_SIZES": list(TREE_SIZES),
        "TREE_TOP": TREE_TOP,
        "SPLIT_AT": SPLIT_AT,
        "NODE_MARK": NODE_MARK,
        "NODE_KEY": "%sn:%d:%d",  # node_key's format: base, level, index
        "COUNT_KEYS": COUNT_KEYS,
        "DEDUP_FIELD_BYTES": DEDUP_FIELD_BYTES,
        "DEDUP_SPLIT_AT": DEDUP_SPLIT_AT,
        "DEDUP_KEY": "%sx:%d:%d:%d",  # dedup_key's format: base, generation, depth, bits
        "FIRST_GENERATION": FIRST_GENERATION,
        "LIVE_FIELD": LIVE_FIELD,
    }
