"""What the views call: counts from the projection, snapshots kept of them, readiness."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app

from api.schemas import valid_snapshot_id
from api.snapshots import RangeTaken, Snapshot, SnapshotPage, SnapshotStore

if TYPE_CHECKING:
    import redis

    from api.intervals import Bucket
    from config import Settings
    from projector.live import LiveCounters
    from projector.registry import GenerationRegistry

EXTENSION = "period-record-counts"


class ServiceError(Exception):
    """Base of the API's domain errors; api/errors.py maps each to its HTTP status."""


class SnapshotNotFound(ServiceError):
    """No snapshot has this id (404)."""


class RangeConflict(ServiceError):
    """Another snapshot already holds this (org, range) (409)."""


@dataclass(frozen=True)
class RebuildStatus:
    """A rebuild under way, as its process last reported (None: not reported yet)."""

    generation: int
    phase: str
    records_applied: int | None
    records_total: int | None
    lag_records: int | None
    events_per_second: float | None
    eta_seconds: float | None
    updated_at: int | None


@dataclass(frozen=True)
class Readiness:
    """How far the projection has got: `caught_up_at` epoch seconds, lag behind now; the
    live generation, and a rebuild's progress."""

    caught_up_at: int | None
    lag_seconds: float | None
    generation: int
    rebuild: RebuildStatus | None


def _number(raw: dict[str, str], name: str, kind: type[int] | type[float]) -> Any:
    value = raw.get(name)
    return None if value in (None, "") else kind(float(value))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SeriesCounts:
    """Counts of a series' buckets, in order, and is_complete for its whole range."""

    counts: list[int]
    is_complete: bool
    computed_at: float


def new_snapshot_id() -> str:
    """A fresh, unguessable snapshot id."""
    return f"count-snapshot-{uuid.uuid4().hex}"


class CountService:
    """Counts an org's records over a range and keeps snapshots of those counts."""

    def __init__(
        self,
        counters: LiveCounters,
        snapshots: SnapshotStore,
        registry: GenerationRegistry,
        grace_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counters = counters
        self._snapshots = snapshots
        self._registry = registry
        self._grace = grace_seconds
        self._clock = clock

    def _complete(self, end: int, caught_up_at: float | None) -> bool:
        """A range is complete once its end plus the grace is caught up (the POST's rule,
        computed in lua/count_upsert.lua for a snapshot)."""
        return caught_up_at is not None and end + self._grace <= caught_up_at

    def series(self, org_id: str, buckets: Sequence[Bucket], end: int) -> SeriesCounts:
        """Count each bucket (consecutive, the last ending at `end`) in one Redis round trip;
        is_complete as for the count of the whole range. Stores nothing."""
        edges = [bucket.start for bucket in buckets] + [end + 1]
        store = self._counters.store()
        counts, caught_up_at, live = store.count_series(org_id, edges)
        if live != store.generation:  # a switch this process had not heard of yet
            self._counters.live.learn(live)
            counts, caught_up_at, _ = self._counters.store(live).count_series(org_id, edges)
        return SeriesCounts(counts, self._complete(end, caught_up_at), self._clock())

    def count(self, org_id: str, start: int, end: int) -> tuple[Snapshot, bool]:
        """Count now and create or refresh the (org, range) snapshot; True when created.

        One Redis round trip on a single Redis (count, caught_up_at and upsert in one
        script), two on a Redis Cluster (the count, then the upsert)."""
        return self._snapshots.count_and_upsert(
            org_id, start, end, self._grace, self._clock(), new_snapshot_id()
        )

    def get(self, snapshot_id: str) -> Snapshot:
        """The snapshot; raises SnapshotNotFound (404)."""
        snapshot = self._snapshots.get(snapshot_id) if valid_snapshot_id(snapshot_id) else None
        if snapshot is None:
            raise SnapshotNotFound(f"There is no snapshot {snapshot_id!r}.")
        return snapshot

    def recount(self, snapshot_id: str, start: int, end: int) -> Snapshot:
        """Recount the snapshot's org over a new range; raises SnapshotNotFound, RangeConflict."""
        stored = self.get(snapshot_id)
        try:
            snapshot = self._snapshots.replace(stored, start, end, self._grace, self._clock())
        except RangeTaken as taken:
            raise RangeConflict(
                f"Snapshot {taken.holder!r} already holds this range for org {stored.org_id!r}."
            ) from taken
        if snapshot is None:
            raise SnapshotNotFound(f"There is no snapshot {snapshot_id!r}.")
        return snapshot

    def delete(self, snapshot_id: str) -> None:
        """Delete the snapshot; raises SnapshotNotFound (404)."""
        if not self._snapshots.delete(self.get(snapshot_id)):
            raise SnapshotNotFound(f"There is no snapshot {snapshot_id!r}.")

    def list_snapshots(
        self, page: int, limit: int, org_id: str | None, is_complete: bool | None
    ) -> SnapshotPage:
        """One page of snapshots, newest first, with the filter's true total."""
        return self._snapshots.page((page - 1) * limit, limit, org_id, is_complete)

    def readiness(self) -> Readiness:
        """Projection progress; raises redis errors when Redis does not answer (503)."""
        state, progress = self._registry.status()
        live = state.live.number
        self._counters.live.learn(live)
        caught_up_at = self._counters.store(live).caught_up_at()
        rebuild = None
        if state.rebuild is not None:
            rebuild = RebuildStatus(
                state.rebuild.generation.number,
                progress.get("phase") or state.rebuild.phase.value,
                _number(progress, "applied", int),
                _number(progress, "end", int),
                _number(progress, "lag", int),
                _number(progress, "rate", float),
                _number(progress, "eta", float),
                _number(progress, "at", int) or None,
            )
        if caught_up_at is None:
            return Readiness(None, None, live, rebuild)
        lag = max(0.0, round(self._clock() - caught_up_at, 3))
        return Readiness(int(caught_up_at), lag, live, rebuild)


@dataclass(frozen=True)
class Components:
    """What one app holds (in `app.extensions[EXTENSION]`): for views and the stream."""

    settings: Settings
    redis: redis.Redis
    counters: LiveCounters
    snapshots: SnapshotStore
    service: CountService


def current_components() -> Components:
    """The components of the app handling this request."""
    components: Components = current_app.extensions[EXTENSION]
    return components


def current_service() -> CountService:
    """The service of the app handling this request."""
    return current_components().service
