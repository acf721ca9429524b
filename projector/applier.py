"""Applies batches to Redis on a thread of its own, one at a time, retrying while Redis is away.

The consumer submits batch N+1 only after `wait()` returned batch N's outcome, so batches
reach Redis in poll order and each one's expected positions are those N left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import NamedTuple

from events.redis_client import UNAVAILABLE
from projector import metrics
from projector.store import (
    ApplyResult,
    CounterStore,
    Increment,
    PositionsDiverged,
    PreparedApply,
)

log = logging.getLogger(__name__)

RETRY_BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0)

Outcome = tuple["Batch", ApplyResult] | PositionsDiverged | None


class Batch(NamedTuple):
    """One poll's increments, the partition positions after it, those Redis should hold, and
    the ownership epochs it was read under (projector.partitions)."""

    increments: list[Increment]
    positions: dict[int, int]
    expected: dict[int, int | None]
    epochs: dict[int, int]
    prepared: PreparedApply | None = None  # built by the poll thread while Redis was busy


class Applier:
    """A single background thread that applies one batch at a time."""

    def __init__(self, store: CounterStore, stop: threading.Event) -> None:
        self.store = store
        self.stop = stop
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="applier")
        self._pending: Future[Outcome] | None = None

    def submit(self, batch: Batch) -> None:
        """Start applying `batch`; the previous one must have been waited for."""
        assert self._pending is None, "wait() for the batch in flight first"
        self._pending = self._pool.submit(self._apply, batch)

    def wait(self) -> Outcome:
        """The outcome of the batch in flight (None if none, or dropped on stop)."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def settle(self, timeout: float) -> bool:
        """Wait up to `timeout` for the batch in flight to land (its outcome stays for `wait`);
        True when none is in flight any more."""
        pending = self._pending
        return pending is None or bool(wait_futures([pending], timeout).done)

    def close(self) -> None:
        """Finish the batch in flight and stop the thread."""
        self._pool.shutdown(wait=True)

    def _apply(self, batch: Batch) -> Outcome:
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                result = self.store.apply(
                    batch.increments, batch.positions, batch.expected, batch.prepared
                )
                break
            except PositionsDiverged as diverged:
                return diverged
            except UNAVAILABLE as error:
                metrics.APPLY_RETRIES.inc()
                if self.stop.is_set():
                    # Nothing of this batch is acknowledged anywhere: a restart re-reads it.
                    log.warning("stopping with a batch unapplied (redis unreachable)")
                    return None
                delay = RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)]
                attempt += 1
                log.warning(
                    "redis unreachable; retrying batch",
                    extra={"error": str(error), "retry_in": delay},
                )
                time.sleep(delay)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(batch.increments))
        metrics.EVENTS_APPLIED.inc(result.applied)
        metrics.EVENTS_DUPLICATE.inc(result.duplicates)
        metrics.EVENTS_REPLAYED.inc(result.already_applied)
        return batch, result
