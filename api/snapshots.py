"""Durable count snapshots in Redis: one per (org, range), listed newest first with true totals.

Key layout (P = the settings' Redis key prefix; ids never contain ':' or '|', org ids never '|'):

    P:snapshot:{id}                          hash: the snapshot's fields, plus `score`
    P:snapshots:by-range                     hash: "{org}|{start}|{end}" -> id (the unique index)
    P:snapshots:all                          zset: id scored by snapshot time in ms
    P:snapshots:complete:{0|1}               zset: the same, per stored is_complete
    P:snapshots:org:{org}                    zset: the same, per org
    P:snapshots:org-complete:{0|1}:{org}     zset: the same, per org and is_complete

The org id ends every per-org key, so an org id containing ':' cannot alias another family.
Every change is one Lua script, so the hash, the unique index and all four sorted sets move
together and concurrent writers of one (org, range) end with exactly one snapshot. The
scripts build key names from the prefix: fine on a single Redis, which is what we run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from projector.store import COUNT_SOURCE

_COMMON = """
local p = ARGV[1]
local function zsets(org, complete)
  return {p .. ':snapshots:all', p .. ':snapshots:org:' .. org,
          p .. ':snapshots:complete:' .. complete,
          p .. ':snapshots:org-complete:' .. complete .. ':' .. org}
end
local function unindex(id, org, complete)
  for _, key in ipairs(zsets(org, complete)) do redis.call('ZREM', key, id) end
end
local function store(id, org, s, e, count, complete, at, score)
  redis.call('HSET', p .. ':snapshot:' .. id, 'id', id, 'org_id', org, 'range_start', s,
             'range_end', e, 'record_count', count, 'is_complete', complete,
             'snapshot_at', at, 'score', score)
  for _, key in ipairs(zsets(org, complete)) do redis.call('ZADD', key, score, id) end
end
-- Create the (org, range) snapshot as new_id, or refresh the stored one with these values.
-- Returns {created (0|1), id} when these values were stored, or {0, id, stored fields} when
-- the stored snapshot is newer (a refresh older than it changes nothing).
local function upsert(org, s, e, new_id, count, complete, at, score)
  local index = p .. ':snapshots:by-range'
  local field = org .. '|' .. s .. '|' .. e
  local id = redis.call('HGET', index, field)
  if id then
    local old = redis.call('HMGET', p .. ':snapshot:' .. id, 'is_complete', 'score')
    if tonumber(old[2]) > tonumber(score) then
      return {0, id, redis.call('HGETALL', p .. ':snapshot:' .. id)}
    end
    unindex(id, org, old[1])
    store(id, org, s, e, count, complete, at, score)
    return {0, id}
  end
  redis.call('HSET', index, field, new_id)
  store(new_id, org, s, e, count, complete, at, score)
  return {1, new_id}
end
"""

# The POST's one round trip: count.lua (the projector's, unchanged, as a function), the global
# caught_up_at (one field, stored by the projectors), is_complete, and the upsert of the
# result, all in one script.
# KEYS: count.lua's five hashes, then the caught-up hash (CounterStore.count_script_args).
# ARGV: prefix, start, end, the caught-up hash's caught_up_at field, org, new id, grace
# seconds, snapshot_at, score (ms).
# Returns {record_count, is_complete (0|1), then upsert's reply}.
_COUNT_UPSERT = (
    "local function count_range(KEYS, ARGV)\n"
    + "".join(line for line in COUNT_SOURCE.splitlines(True) if not line.startswith("#!"))
    + "\nend\n"
    + _COMMON
    + """
local s, e = ARGV[2], ARGV[3]
local total = count_range(KEYS, {s, e})
local caught_up = tonumber(redis.call('HGET', KEYS[6], ARGV[4]))
local complete = 0
if caught_up and tonumber(e) + tonumber(ARGV[7]) <= caught_up then complete = 1 end
local reply = upsert(ARGV[5], s, e, ARGV[6], string.format('%d', total), complete, ARGV[8],
                     ARGV[9])
return {total, complete, reply[1], reply[2], reply[3]}
"""
)

# ARGV: prefix, id, start, end, count, complete, snapshot_at, score.
# Returns {'missing'}, {'conflict', other id} or {'ok', snapshot fields}.
_REPLACE = (
    _COMMON
    + """
local id, s, e = ARGV[2], ARGV[3], ARGV[4]
local key = p .. ':snapshot:' .. id
local old = redis.call('HMGET', key, 'org_id', 'range_start', 'range_end', 'is_complete')
if not old[1] then return {'missing'} end
local org = old[1]
local index = p .. ':snapshots:by-range'
local field = org .. '|' .. s .. '|' .. e
local holder = redis.call('HGET', index, field)
if holder and holder ~= id then return {'conflict', holder} end
redis.call('HDEL', index, org .. '|' .. old[2] .. '|' .. old[3])
redis.call('HSET', index, field, id)
unindex(id, org, old[4])
store(id, org, s, e, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
return {'ok', redis.call('HGETALL', key)}
"""
)

# ARGV: prefix, id. Returns 1 when deleted, 0 when there was no such snapshot.
_DELETE = (
    _COMMON
    + """
local id = ARGV[2]
local key = p .. ':snapshot:' .. id
local old = redis.call('HMGET', key, 'org_id', 'range_start', 'range_end', 'is_complete')
if not old[1] then return 0 end
redis.call('HDEL', p .. ':snapshots:by-range', old[1] .. '|' .. old[2] .. '|' .. old[3])
unindex(id, old[1], old[4])
redis.call('DEL', key)
return 1
"""
)

# ARGV: prefix, org ('' = any), complete ('' = any), offset, limit.
# Returns {total, snapshot fields...}: one consistent page in one round trip.
_PAGE = """
local p, org, complete = ARGV[1], ARGV[2], ARGV[3]
local offset, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local key = p .. ':snapshots:all'
if org ~= '' and complete ~= '' then key = p .. ':snapshots:org-complete:' .. complete .. ':' .. org
elseif org ~= '' then key = p .. ':snapshots:org:' .. org
elseif complete ~= '' then key = p .. ':snapshots:complete:' .. complete end
local total = redis.call('ZCARD', key)
local out = {total}
if offset < total then
  for _, id in ipairs(redis.call('ZREVRANGE', key, offset, offset + limit - 1)) do
    out[#out + 1] = redis.call('HGETALL', p .. ':snapshot:' .. id)
  end
end
return out
"""


@dataclass(frozen=True)
class Snapshot:
    """A count of one org's records over [range_start, range_end], frozen at snapshot_at."""

    id: str
    org_id: str
    range_start: int
    range_end: int
    record_count: int
    is_complete: bool
    snapshot_at: int


@dataclass(frozen=True)
class SnapshotPage:
    """One page of snapshots and the number of snapshots matching the filter."""

    items: list[Snapshot]
    total: int


class RangeTaken(Exception):
    """Another snapshot already holds this (org, range); `holder` is its id."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def _snapshot(h: dict[str, str]) -> Snapshot:
    return Snapshot(
        id=h["id"],
        org_id=h["org_id"],
        range_start=int(h["range_start"]),
        range_end=int(h["range_end"]),
        record_count=int(h["record_count"]),
        is_complete=h["is_complete"] == "1",
        snapshot_at=int(h["snapshot_at"]),
    )


def _upserted(
    reply: list[Any], org_id: str, start: int, end: int, count: int, complete: bool, at: float
) -> tuple[Snapshot, bool]:
    """(snapshot, created) from the upsert's reply: what was stored, or the newer stored one."""
    created, snapshot_id = reply[0] == 1, _text(reply[1])
    if len(reply) > 2:
        return _snapshot(_pairs(reply[2])), created
    return Snapshot(snapshot_id, org_id, start, end, count, complete, int(at)), created


def _values(count: int, complete: bool, at: float) -> list[int]:
    """record_count, is_complete, snapshot_at (whole seconds) and the ordering score (ms)."""
    return [count, int(complete), int(at), int(at * 1000)]


class SnapshotStore:
    """Reads and atomic writes of snapshots; every method is one Redis round trip."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._count_upsert = client.register_script(_COUNT_UPSERT)
        self._replace = client.register_script(_REPLACE)
        self._delete = client.register_script(_DELETE)
        self._page = client.register_script(_PAGE)

    def get(self, snapshot_id: str) -> Snapshot | None:
        """The snapshot with this id, or None."""
        stored = self._redis.hgetall(f"{self._prefix}:snapshot:{snapshot_id}")
        if not stored:
            return None
        return _snapshot({_text(k): _text(v) for k, v in stored.items()})

    def count_and_upsert(
        self,
        count_args: tuple[list[str], list[Any]],
        org_id: str,
        start: int,
        end: int,
        grace_seconds: int,
        at: float,
        new_id: str,
    ) -> tuple[Snapshot, bool]:
        """Count [start, end] with the projector's count script, decide is_complete from the
        global caught_up_at (complete once end + grace_seconds <= it), and upsert that, all in
        one round trip. `count_args` is CounterStore.count_script_args(org_id, start, end)."""
        names, (first, last, caught_up_field) = count_args
        reply = self._count_upsert(
            keys=names,
            args=[
                self._prefix,
                first,
                last,
                caught_up_field,
                org_id,
                new_id,
                grace_seconds,
                int(at),
                int(at * 1000),
            ],
        )
        count, complete = int(reply[0]), reply[1] == 1
        return _upserted(reply[2:], org_id, start, end, count, complete, at)

    def replace(
        self, snapshot_id: str, start: int, end: int, count: int, complete: bool, at: float
    ) -> Snapshot | None:
        """Give a snapshot a new range and count; None if it is gone; RangeTaken on conflict."""
        reply = self._replace(
            args=[self._prefix, snapshot_id, start, end, *_values(count, complete, at)]
        )
        status = _text(reply[0])
        if status == "missing":
            return None
        if status == "conflict":
            raise RangeTaken(_text(reply[1]))
        return _snapshot(_pairs(reply[1]))

    def delete(self, snapshot_id: str) -> bool:
        """Delete a snapshot; False if there was none."""
        return self._delete(args=[self._prefix, snapshot_id]) == 1

    def page(
        self, offset: int, limit: int, org_id: str | None, is_complete: bool | None
    ) -> SnapshotPage:
        """Snapshots [offset, offset + limit) newest first, filtered, with the filter's total."""
        complete = "" if is_complete is None else str(int(is_complete))
        reply = self._page(args=[self._prefix, org_id or "", complete, offset, limit])
        # A listed id always has its hash (scripts change both together); skip one if not.
        items = [_snapshot(_pairs(flat)) for flat in reply[1:] if flat]
        return SnapshotPage(items, int(reply[0]))
