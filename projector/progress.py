"""How far this member has got: log-end probes that advance caught_up_at, and late events.

Once a PROBE_INTERVAL the member asks Kafka for the log ends of its ready partitions; each
partition that has applied up to its probed end gets the probe's start time (a safe lower
bound of when those ends held) as its caught-up time in Redis, where the store keeps the
topic's caught_up_at. Which partitions are probed, and how far each is, is the tracker's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from events.redis_client import UNAVAILABLE
from projector import metrics
from projector.partitions import PartitionTracker
from projector.store import CounterStore, Increment

log = logging.getLogger(__name__)
PROBE_INTERVAL = 1.0  # seconds between log-end probes


def with_redis(call: Callable[[], Any]) -> Any:
    """Run a best-effort Redis call; None when Redis is unreachable."""
    try:
        return call()
    except UNAVAILABLE as error:
        log.warning("redis unreachable", extra={"error": str(error)})
        return None


class Progress:
    """This member's log-end probes and the topic's caught_up_at as last stored."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        tracker: PartitionTracker,
        store: CounterStore,
        topic: str,
        *,
        notify: bool = True,
    ) -> None:
        self._consumer, self._tracker, self._store, self._topic = consumer, tracker, store, topic
        self._notify = notify  # publish caught_up_at changes (a rebuild's are nobody's news)
        self._last_probe = 0.0
        self.caught_up_at: float | None = None

    def use(self, store: CounterStore) -> None:
        """Record progress in this store (another generation) from now on."""
        self._store = store
        self.caught_up_at = None

    def advance(self) -> None:
        """Probe when due; record the partitions that reached their probed end."""
        now = time.time()
        if not self._tracker.probing and now - self._last_probe >= PROBE_INTERVAL:
            ready = self._tracker.ready()
            if ready:
                self._last_probe = now
                try:
                    ends = self._consumer.end_offsets(self._tps(ready), timeout_ms=5000)
                except KafkaError as error:
                    # The broker is away (restarting): poll() waits for it; probe later.
                    log.warning("log-end probe failed", extra={"error": str(error)})
                    return
                self._tracker.start_probe(now, {tp.partition: off for tp, off in ends.items()})
        for partition, lag in self._tracker.lag().items():
            metrics.CONSUMER_LAG.labels(partition=str(partition)).set(lag)
        reached = self._tracker.reached()
        if reached is None or not reached[1]:
            return
        probed_at, partitions = reached
        for partition in partitions:
            metrics.CONSUMER_LAG.labels(partition=str(partition)).set(0)
        count = len(self._consumer.partitions_for_topic(self._topic) or ())
        times = dict.fromkeys(partitions, probed_at)
        stored = with_redis(lambda: self._store.set_caught_up(times, count))
        if stored is None:
            return
        previous, self.caught_up_at = self.caught_up_at, stored
        metrics.CAUGHT_UP_AT.set(stored)
        if stored != previous and self._notify:
            with_redis(lambda: self._store.publish_progress(stored))

    def count_late(self, increments: Iterable[Increment], grace_seconds: int) -> None:
        """Count events applied for a second older than caught_up_at minus the grace."""
        if self.caught_up_at is None:
            return
        horizon = self.caught_up_at - grace_seconds
        late = sum(1 for inc in increments if inc.second < horizon)
        if late:
            metrics.LATE_EVENTS.inc(late)

    def _tps(self, partitions: Iterable[int]) -> list[TopicPartition]:
        return [TopicPartition(self._topic, p) for p in partitions]
