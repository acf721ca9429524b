"""The Redis key layout: the one module that names the projector's keys, fields and channel.

Every key of an org carries the hash tag `{org_id}`, so one org's keys share a Redis Cluster
slot and one Lua call may touch them all. `P` is the configured prefix, `D` a day number
(second // 86400), `B` a 32-day block number (D // 32, the level-4 bucket index).

Keys (all hashes but the channel):

- `P:{org}:d:D` — levels 0-2 of day D. Fields: second of day (0..86399); -1 - minute of day
  (-1..-1440); -1441 - hour of day (-1441..-1464). Values: counts.
- `P:{org}:b:B` — level 3 of block B. Fields: day of block (0..31).
- `P:{org}:u` — levels 4-7. Fields: 4 * index + (level - 4).
- `P:{org}:pos` — `<topic>:<partition>` -> highest offset applied for this org.
- `P:{org}:x:G:S` — dedup for generation G = seen_at // window and shard S (first byte of the
  digest % DEDUP_SHARDS): 16-byte blake2b digest of event_id -> seen_at when it was counted.
  Expires after the next generation ends (plus a day), or a day after its last write.
- `P:pos:<topic>` — partition -> next offset to read (the whole group's position; only ever
  raised, except by Redis losing writes, which the owner of the partition then notices).
- `P:caught_up:<topic>` — partition -> caught-up epoch seconds (float, only ever raised),
  `partitions` -> the topic's partition count, and `min` -> the topic's caught_up_at.
- `P:changes` — pub/sub channel of JSON change notices (see `projector.store.decode_change`).

Why this shape: every field name is a small integer (Redis stores those in 1-4 bytes inside
a listpack) and a day's seconds, minutes and hours share one hash, so for 100 events per org
per day the key overhead is paid once per org-day and the hash holds about 220 entries. That
stays listpack-encoded under Redis's default `hash-max-listpack-entries 512` (the default is
512 for hashes; our redis.conf and docker-compose set it explicitly). Measured on Redis 7.0
for 1,000 orgs x 30 days x 100 events/org/day: ~14 bytes per event for counters and ~26 bytes
per event held in the dedup window (the dedup shards keep each hash under 512 entries up to
~2,000 events per org per generation). A smaller setting stays correct; busier hashes are
then stored as hashtables, at several times the memory.

The field formulas are mirrored in `projector/lua/apply.lua` (which computes them per event
in Redis); tests/integration/test_store.py pins the two together.
"""

from __future__ import annotations

import re

from projector.buckets import DAY, TOP

DEDUP_SHARDS = 4
_MINUTES_PER_DAY = 1_440
_HOURS_PER_DAY = 24
DAYS_PER_BLOCK = 32
_ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}").fullmatch
_PREFIX = re.compile(r"[^{}\s]+").fullmatch


def check_prefix(prefix: str) -> str:
    """The prefix, or ValueError when it is empty or holds braces or blanks."""
    if not isinstance(prefix, str) or not _PREFIX(prefix):
        raise ValueError(f"invalid key prefix {prefix!r}")
    return prefix


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


def positions_key(prefix: str, topic: str) -> str:
    """The consumer's partition -> next offset hash."""
    return f"{prefix}:pos:{topic}"


def caught_up_key(prefix: str, topic: str) -> str:
    """The partition -> caught-up time hash (plus the `partitions` count field)."""
    return f"{prefix}:caught_up:{topic}"


CAUGHT_UP_PARTITIONS_FIELD = "partitions"
# The topic's caught_up_at, kept in the same hash by the writer (projector/lua/caught_up.lua).
CAUGHT_UP_MIN_FIELD = "min"

_KIND = re.compile(r"^[^{]*\{[^}]*\}:(d|b|u|pos|x)(?::|$)")
_KIND_NAMES = {"d": "counters", "b": "counters", "u": "counters", "x": "dedup", "pos": "offsets"}


def kind_of(key: str) -> str:
    """What a projector key holds: counters, dedup, offsets, or other (positions, caught-up)."""
    match = _KIND.match(key)
    return _KIND_NAMES[match.group(1)] if match else "other"


def changes_channel(prefix: str) -> str:
    """The pub/sub channel of change notifications."""
    return f"{prefix}:changes"


def locate(base: str, level: int, index: int) -> tuple[str, int]:
    """(key, field) holding the counter of bucket (level, index) of the org at `base`."""
    if level == 0:
        day = index // DAY
        return day_key(base, day), index - day * DAY
    if level == 1:
        day = index // _MINUTES_PER_DAY
        return day_key(base, day), -1 - (index - day * _MINUTES_PER_DAY)
    if level == 2:
        day = index // _HOURS_PER_DAY
        return day_key(base, day), -1 - _MINUTES_PER_DAY - (index - day * _HOURS_PER_DAY)
    if level == 3:
        block = index // DAYS_PER_BLOCK
        return block_key(base, block), index - block * DAYS_PER_BLOCK
    if 4 <= level <= TOP:
        return upper_key(base), 4 * index + (level - 4)
    raise ValueError(f"no level {level}")


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
