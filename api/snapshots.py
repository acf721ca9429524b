"""Durable count snapshots in Redis: one per (org, range), listed newest first with true totals.

The layout is projector/keys.py's (all snapshot keys share the `{#}` slot) and the scripts
are projector/scripts.py's: the record, the unique (org, range) index and the four sorted
sets move together in one script, so concurrent writers of one (org, range) end with exactly
one snapshot. A POST is one round trip on a single Redis (count and upsert in one script);
on a Redis Cluster, where the org's counters live in another slot, it is two: the count on
the org's node, then the upsert on the snapshots' node.

Generations: counts are of the generation this process believes live (`projector.live`), and
every script that stores a count checks, atomically with the write, that the generation it
was counted in is still the live one; when a switch came between, it writes nothing and
names the live generation, which the process learns before counting again (docs/design.md,
"Rebuilding the projection").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.redis_client import is_cluster
from projector import keys, scripts
from projector.live import GenerationChanging, LiveCounters
from projector.routing import call

STALE = -1  # the first element of a count-and-upsert reply: the generation was not live
ATTEMPTS = 3  # counts per request at most: a switch between two of them is one more


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


def _snapshot(snapshot_id: Any, record: Any) -> Snapshot:
    """A snapshot from its stored record (`org|start|end|count|complete|at|score`)."""
    org, start, end, count, complete, at, _ = _text(record).split("|")
    return Snapshot(
        _text(snapshot_id), org, int(start), int(end), int(count), complete == "1", int(at)
    )


def _upserted(
    reply: list[Any], org_id: str, start: int, end: int, at: float
) -> tuple[Snapshot, bool]:
    """(snapshot, created) from a count-and-upsert reply {count, complete, created, id[, record]}:
    what was stored, or the newer stored one."""
    count, complete, created, snapshot_id = int(reply[0]), reply[1] == 1, reply[2] == 1, reply[3]
    if len(reply) > 4 and reply[4] is not None:
        return _snapshot(snapshot_id, reply[4]), created
    return Snapshot(_text(snapshot_id), org_id, start, end, count, complete, int(at)), created


class SnapshotStore:
    """Reads and atomic writes of snapshots; see the module docstring for the round trips."""

    def __init__(self, client: Any, counters: LiveCounters) -> None:
        self._redis = client
        self._counters = counters
        self._cluster = is_cluster(client)
        prefix = counters.prefix
        self._prefix = prefix
        self._records = keys.snapshots_key(prefix)
        self._index = keys.snapshot_index_keys(prefix)
        self._generation = keys.generation_key(prefix)

    def _keys(self, org_id: str) -> list[str]:
        """The eight keys every snapshot write declares (lua/snapshots_lib.lua's order)."""
        index, org = self._index, keys.snapshot_org_keys(self._prefix, org_id)
        return [
            self._records,
            index["by_range"],
            index["all"],
            index["complete:0"],
            index["complete:1"],
            org["org"],
            org["org-complete:0"],
            org["org-complete:1"],
        ]

    def get(self, snapshot_id: str) -> Snapshot | None:
        """The snapshot with this id, or None."""
        record = self._redis.hget(self._records, snapshot_id)
        return None if record is None else _snapshot(snapshot_id, record)

    def count_and_upsert(
        self, org_id: str, start: int, end: int, grace_seconds: int, at: float, new_id: str
    ) -> tuple[Snapshot, bool]:
        """Count [start, end] in the live generation, decide is_complete from its caught_up_at
        (complete once end + grace_seconds <= it), create or refresh the (org, range)
        snapshot."""
        stamp = [new_id, grace_seconds, int(at), int(at * 1000)]
        for _ in range(ATTEMPTS):
            counters = self._counters.store()
            caught_up_key, caught_up_field = counters.caught_up_field
            if self._cluster:
                count = counters.count(org_id, start, end)
                names = [caught_up_key, *self._keys(org_id), self._generation]
                args = [count, start, end, caught_up_field, org_id, *stamp, counters.generation]
                script = scripts.UPSERT_COUNTED
            else:
                names = [*counters.count_keys(org_id, start, end), caught_up_key]
                names += [*self._keys(org_id), self._generation]
                args = [start, end, caught_up_field, org_id, *stamp, counters.generation]
                script = scripts.COUNT_UPSERT
            reply = call(self._redis, "EVALSHA", script.sha, len(names), *names, *args)
            if int(reply[0]) != STALE:
                return _upserted(reply, org_id, start, end, at)
            self._counters.live.learn(int(reply[1]))
        raise GenerationChanging("the live generation changed while counting; try again")

    def replace(
        self, snapshot: Snapshot, start: int, end: int, grace_seconds: int, at: float
    ) -> Snapshot | None:
        """Recount the snapshot's org over [start, end] in the live generation and give the
        snapshot that range and count (is_complete decided as for a POST); None if it is
        gone; RangeTaken when another snapshot of its org holds that range."""
        for _ in range(ATTEMPTS):
            counters = self._counters.store()
            count = counters.count(snapshot.org_id, start, end)
            caught_up_key, caught_up_field = counters.caught_up_field
            names = [caught_up_key, *self._keys(snapshot.org_id), self._generation]
            args = [snapshot.id, snapshot.org_id, start, end, count, caught_up_field]
            args += [grace_seconds, int(at), int(at * 1000), counters.generation]
            reply = call(self._redis, "EVALSHA", scripts.REPLACE.sha, len(names), *names, *args)
            status = _text(reply[0])
            if status == "stale":
                self._counters.live.learn(int(reply[1]))
                continue
            if status == "missing":
                return None
            if status == "conflict":
                raise RangeTaken(_text(reply[1]))
            return _snapshot(snapshot.id, reply[1])
        raise GenerationChanging("the live generation changed while counting; try again")

    def delete(self, snapshot: Snapshot) -> bool:
        """Delete a snapshot; False if it was gone already."""
        names = self._keys(snapshot.org_id)
        args = [snapshot.id, snapshot.org_id]
        return call(self._redis, "EVALSHA", scripts.DELETE.sha, len(names), *names, *args) == 1

    def page(
        self, offset: int, limit: int, org_id: str | None, is_complete: bool | None
    ) -> SnapshotPage:
        """Snapshots [offset, offset + limit) newest first, filtered, with the filter's total."""
        if org_id:
            org = keys.snapshot_org_keys(self._prefix, org_id)
            listing = org["org"] if is_complete is None else org[f"org-complete:{int(is_complete)}"]
        else:
            name = "all" if is_complete is None else f"complete:{int(is_complete)}"
            listing = self._index[name]
        reply = call(
            self._redis, "EVALSHA_RO", scripts.PAGE.sha, 2, self._records, listing, offset, limit
        )
        items = [_snapshot(reply[i], reply[i + 1]) for i in range(1, len(reply), 2)]
        return SnapshotPage(items, int(reply[0]))
