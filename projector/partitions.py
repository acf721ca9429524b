"""Which partitions this projector member owns, and what it knows of each: pure state, no I/O.

Kafka's rebalance callbacks (on kafka-python's I/O thread) and the poll loop both change this
state, so every method takes one lock and returns what the caller must do (pause, seek,
commit), never doing it itself. The rules it keeps, by construction:

- Only owned partitions have state: a revoked or lost partition is forgotten at once, its
  pending probe entry too, and a batch that was in flight for it changes nothing on landing
  (each ownership gets an epoch; a batch's outcome counts only for the epochs it was read in).
- A newly assigned partition is *pending* (the consumer pauses it) until its position could be
  read from Redis; only *ready* partitions are fetched, applied, checked and probed.
- Commits move forward only: never below what Kafka held when the partition was assigned,
  nor below any commit Kafka acknowledged since.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Epochs = dict[int, int]


@dataclass
class _Owned:
    """One owned partition: its ownership epoch, and (once ready) the next offset in Redis."""

    epoch: int
    ready: bool = False
    next: int | None = None  # None: Redis holds nothing for it (read from the beginning)
    committed: int | None = None  # the highest offset known committed (Kafka's, or ours)


@dataclass
class Probe:
    """A log-end probe: when it started, and the end offsets still to reach."""

    started_at: float
    ends: dict[int, int] = field(default_factory=dict)


class PartitionTracker:
    """The owned partitions' positions, epochs, committed floors and the pending probe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: dict[int, _Owned] = {}
        self._epoch = 0
        self._probe: Probe | None = None

    # -- membership (rebalance callbacks) ----------------------------------------------

    def assign(self, partitions: Iterable[int]) -> list[int]:
        """Take ownership; returns the partitions now pending (to pause until `resolve`).

        A partition already owned and ready stays as it is (a cooperative rebalance can
        re-announce it)."""
        with self._lock:
            pending = []
            for p in partitions:
                if p in self._owned and self._owned[p].ready:
                    continue
                self._epoch += 1
                self._owned[p] = _Owned(self._epoch)
                pending.append(p)
            return sorted(pending)

    def revoke(self, partitions: Iterable[int]) -> list[int]:
        """Forget partitions another member now owns (revoked or lost); returns those dropped."""
        with self._lock:
            dropped = [p for p in partitions if self._owned.pop(p, None) is not None]
            if self._probe is not None:
                for p in dropped:
                    self._probe.ends.pop(p, None)
                if not self._probe.ends:
                    self._probe = None
            return sorted(dropped)

    # -- positions -----------------------------------------------------------------------

    def pending(self) -> list[int]:
        """Owned partitions whose position has not been read from Redis yet."""
        with self._lock:
            return sorted(p for p, o in self._owned.items() if not o.ready)

    def ready(self) -> list[int]:
        """Owned partitions that are fetched and applied."""
        with self._lock:
            return sorted(p for p, o in self._owned.items() if o.ready)

    def owned(self) -> list[int]:
        """Every owned partition, pending or ready."""
        with self._lock:
            return sorted(self._owned)

    def is_ready(self, partition: int) -> bool:
        """Whether records of `partition` may be applied now."""
        with self._lock:
            owned = self._owned.get(partition)
            return owned is not None and owned.ready

    def resolve(
        self,
        stored: Mapping[int, int],
        committed: Mapping[int, int | None],
        partitions: Iterable[int],
    ) -> tuple[dict[int, int | None], dict[int, int]]:
        """Mark `partitions` ready at the positions Redis holds (`stored`), with Kafka's
        committed offsets as their commit floors. Returns where to seek each (None: the
        beginning) and the commits due now (positions ahead of Kafka's). Partitions no
        longer owned are left out."""
        with self._lock:
            seeks: dict[int, int | None] = {}
            for p in partitions:
                owned = self._owned.get(p)
                if owned is None:
                    continue
                owned.ready, owned.next, owned.committed = True, stored.get(p), committed.get(p)
                seeks[p] = owned.next
            commits = {p: n for p, n in self._due().items() if p in seeks}
            return seeks, commits

    def expected(self, partitions: Iterable[int]) -> dict[int, int | None]:
        """What Redis should hold for each partition (the caller's last known write)."""
        with self._lock:
            return {p: self._owned[p].next if p in self._owned else None for p in partitions}

    def epochs(self, partitions: Iterable[int]) -> Epochs:
        """The ownership epochs of ready partitions, to stamp a batch read now."""
        with self._lock:
            return {p: self._owned[p].epoch for p in partitions if p in self._owned}

    def applied(self, epochs: Epochs, positions: Mapping[int, int]) -> dict[int, int]:
        """A batch read under `epochs` reached `positions` in Redis; returns the commits due.

        Partitions revoked (or revoked and re-assigned) since the batch was read are ignored."""
        with self._lock:
            for p, offset in positions.items():
                owned = self._owned.get(p)
                if owned is not None and owned.ready and owned.epoch == epochs.get(p):
                    owned.next = offset
            return self._due()

    def commits_due(self) -> dict[int, int]:
        """Ready partitions whose position is ahead of their acknowledged commit."""
        with self._lock:
            return self._due()

    def _due(self) -> dict[int, int]:
        return {
            p: o.next
            for p, o in self._owned.items()
            if o.ready and o.next is not None and (o.committed is None or o.next > o.committed)
        }

    def committed(self, commits: Mapping[int, int]) -> None:
        """Kafka acknowledged these commits: the floor of later ones."""
        with self._lock:
            for p, offset in commits.items():
                owned = self._owned.get(p)
                if owned is not None and (owned.committed is None or offset > owned.committed):
                    owned.committed = offset

    def diverged(self, stored: Mapping[int, int]) -> dict[int, tuple[int | None, int | None]]:
        """Ready partitions whose Redis position differs from ours: p -> (stored, ours)."""
        with self._lock:
            return {
                p: (stored.get(p), o.next)
                for p, o in self._owned.items()
                if o.ready and stored.get(p) != o.next
            }

    def unready(self) -> list[int]:
        """Make every ready partition pending again (Redis lost writes, or holds positions we
        did not expect): they are paused and resolved afresh, under new epochs."""
        with self._lock:
            again = []
            for p, o in self._owned.items():
                if o.ready:
                    self._epoch += 1
                    self._owned[p] = _Owned(self._epoch)
                    again.append(p)
            self._probe = None
            return sorted(again)

    # -- caught-up probe -----------------------------------------------------------------

    @property
    def probing(self) -> bool:
        """Whether a probe is waiting for partitions to reach its log ends."""
        with self._lock:
            return self._probe is not None

    def start_probe(self, started_at: float, ends: Mapping[int, int]) -> None:
        """Begin waiting for the ready partitions to reach these log ends."""
        with self._lock:
            kept = {p: e for p, e in ends.items() if p in self._owned and self._owned[p].ready}
            self._probe = Probe(started_at, kept) if kept else None

    def lag(self) -> dict[int, int]:
        """Records behind the probed log end, per partition still in the probe."""
        with self._lock:
            if self._probe is None:
                return {}
            return {
                p: max(0, end - (self._owned[p].next or 0))
                for p, end in self._probe.ends.items()
                if p in self._owned
            }

    def reached(self) -> tuple[float, list[int]] | None:
        """(probe start, partitions that reached their probed end since the last call); the
        probe ends once all have. None when no probe is pending."""
        with self._lock:
            probe = self._probe
            if probe is None:
                return None
            done = []
            for p, end in list(probe.ends.items()):
                owned = self._owned.get(p)
                position = owned.next if owned is not None else None
                if end == 0 or (position is not None and position >= end):
                    done.append(p)
                    del probe.ends[p]
            if not probe.ends:
                self._probe = None
            return probe.started_at, sorted(done)
