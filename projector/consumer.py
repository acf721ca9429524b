"""The poll loop: Kafka records in, counters and positions out to Redis, bad events to the DLQ.

Order of effects for one batch, and why it is crash-safe at any instant:
1. decode every record; bad ones are sent to the DLQ and the DLQ is flushed (a crash
   after this re-sends them: the DLQ is at-least-once, its headers name the source
   offset so duplicates are recognisable);
2. the store applies each org's increments atomically with that org's per-partition
   offsets, then the partition-level positions (`CounterStore.apply`);
3. offsets are committed to Kafka, for lag tooling only: on assignment we seek to the
   positions stored in Redis, never to Kafka's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from events import topics
from events.codec import InvalidEvent, SkippedEvent, decode_for_count
from events.settings import Settings
from projector import metrics
from projector.applier import Applier, Batch
from projector.store import CounterStore, Increment, PositionsDiverged

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
PROBE_INTERVAL = 1.0  # seconds between log-end probes that advance caught_up_at


class _Rebalance(ConsumerRebalanceListener):
    """Seeks newly assigned partitions to the positions Redis holds."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.projector.forget(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.projector.seek_to_stored(assigned)


class Projector:
    """One member of the projector consumer group."""

    def __init__(self, settings: Settings, redis_client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.topic = settings.record_events_topic
        self.redis = redis_client or redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=5,
            socket_connect_timeout=5,
            retry_on_timeout=False,
        )
        self.store = CounterStore(
            self.redis, settings.redis_key_prefix, self.topic, settings.dedup_window_seconds
        )
        self._stop = threading.Event()
        self._next: dict[int, int] = {}  # partition -> next offset whose effect is in Redis
        self._probe: tuple[float, dict[int, int]] | None = None
        self._last_probe = 0.0
        self._last_check = 0.0
        self._global_caught_up: float | None = None
        self._producer: KafkaProducer | None = None
        self._applier = Applier(self.store, self._stop)
        self.consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.projector_group_id,
            client_id=f"{settings.projector_group_id}-consumer",
            group_instance_id=settings.projector_instance_id,
            session_timeout_ms=10_000,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.projector_max_batch,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=100,
            # kafka-python backs off up to 30 s between reconnects (Java: 1 s), so after a
            # broker restart the projector idled for up to that long with the broker back.
            reconnect_backoff_max_ms=1000,
        )
        self.consumer.subscribe([self.topic], listener=_Rebalance(self))

    # -- lifecycle --------------------------------------------------------------------

    def request_stop(self) -> None:
        """Finish the batch in hand, then leave `run`."""
        self._stop.set()

    def run(self, on_batch: Callable[[int], None] | None = None) -> None:
        """Poll and apply until `request_stop`."""
        log.info("projector started", extra={"topic": self.topic})
        try:
            while not self._stop.is_set():
                handled = self.step()
                if on_batch is not None:
                    on_batch(handled)
            self._finish_previous()  # the batch in hand is applied before we leave
        finally:
            self.close()

    def close(self) -> None:
        """Leave the group and release the connections."""
        try:
            self._applier.close()
            self.consumer.close(autocommit=False)
        finally:
            if self._producer is not None:
                self._producer.close(timeout=10)
            log.info("projector stopped", extra={"topic": self.topic})

    # -- rebalance --------------------------------------------------------------------

    def seek_to_stored(self, assigned: Any) -> None:
        """Resume each assigned partition from Redis's position (or the beginning)."""
        stored = self._with_redis(self.store.positions)
        if stored is None:
            return
        for tp in assigned:
            if tp.topic != self.topic:
                continue
            offset = stored.get(tp.partition)
            if offset is None:
                self.consumer.seek_to_beginning(tp)
                self._next.pop(tp.partition, None)
            else:
                self.consumer.seek(tp, offset)
                self._next[tp.partition] = offset
        log.info(
            "partitions assigned",
            extra={"positions": {tp.partition: stored.get(tp.partition, 0) for tp in assigned}},
        )

    def forget(self, revoked: Any) -> None:
        """Drop state of partitions another member now owns."""
        for tp in revoked:
            self._next.pop(tp.partition, None)

    # -- one batch --------------------------------------------------------------------

    def step(self) -> int:
        """Poll once and hand the batch to the applier; return how many records were polled.

        The previous batch's Redis apply runs on the applier's thread while this one is
        polled and decoded: Redis works on its own core meanwhile.
        """
        try:
            polled = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
        except KafkaError as error:
            # kafka-python 3 can raise a connection error out of poll() while the broker is
            # away (finding the group coordinator). Retriable: wait and poll again; the batch
            # in flight is still collected by the next step.
            if not error.retriable:
                raise
            log.warning("kafka unreachable; polling again", extra={"error": str(error)})
            self._stop.wait(POLL_TIMEOUT_MS / 1000)
            return 0
        increments: list[Increment] = []
        positions: dict[int, int] = {}
        bad = 0
        for tp, records in polled.items():
            for record in records:
                bad += self._collect(tp, record, increments)
            positions[tp.partition] = records[-1].offset + 1
        if bad:
            self._dlq().flush(timeout=30)
        # Build the Lua calls now, while Redis still runs the previous batch's.
        prepared = self.store.prepare(increments)
        if not self._finish_previous() or self._check_stored_positions():
            return 0  # re-sought: this batch was read from positions Redis no longer backs
        self._advance_caught_up()
        if positions:
            expected = {p: self._next.get(p) for p in positions}
            self._applier.submit(Batch(increments, positions, expected, prepared))
        return sum(len(r) for r in polled.values())

    def _finish_previous(self) -> bool:
        """Wait for the batch in flight; False when Redis diverged and we re-sought."""
        outcome = self._applier.wait()
        if outcome is None:
            return True
        if isinstance(outcome, PositionsDiverged):
            # Redis lost recent writes (e.g. killed between AOF fsyncs): re-read from what
            # it holds; the per-org offsets make the replay exact.
            log.warning("redis positions behind ours; re-seeking", extra={"detail": str(outcome)})
            self.seek_to_stored(self.consumer.assignment())
            self._probe = None
            return False
        batch, result = outcome
        self._count_late(batch.increments)
        self._next.update(batch.positions)
        self.consumer.commit_async(
            {
                TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                for p, o in batch.positions.items()
            }
        )
        if result.orgs:
            self._with_redis(lambda: self.store.publish_changes(result, self._global_caught_up))
        return True

    def _collect(self, tp: TopicPartition, record: Any, out: list[Increment]) -> int:
        try:
            event = decode_for_count(record.value, record.key)
        except InvalidEvent as error:
            self._dead_letter(tp, record, error)
            return 1
        if type(event) is SkippedEvent:
            metrics.EVENTS_SKIPPED.inc()
            return 0
        org_id, event_id, second = event
        out.append(
            Increment(
                org_id,
                event_id,
                second,
                tp.partition,
                record.offset,
                max(record.timestamp, 0) // 1000,
            )
        )
        return 0

    def _dead_letter(self, tp: TopicPartition, record: Any, error: InvalidEvent) -> None:
        headers = [
            (topics.HEADER_ERROR_CODE, error.code.encode()),
            (topics.HEADER_ERROR_MESSAGE, str(error.message).encode()[:1024]),
            (topics.HEADER_SOURCE_TOPIC, tp.topic.encode()),
            (topics.HEADER_SOURCE_PARTITION, str(tp.partition).encode()),
            (topics.HEADER_SOURCE_OFFSET, str(record.offset).encode()),
        ]
        self._dlq().send(
            self.settings.dlq_topic, key=record.key, value=record.value, headers=headers
        )
        metrics.EVENTS_DEAD_LETTERED.labels(code=error.code).inc()
        log.warning(
            "event dead-lettered",
            extra={
                "code": error.code,
                "error": error.message,
                "partition": tp.partition,
                "offset": record.offset,
            },
        )

    def _dlq(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                client_id=f"{self.settings.projector_group_id}-dlq",
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                max_request_size=2 * 1024 * 1024,
            )
        return self._producer

    def _count_late(self, increments: list[Increment]) -> None:
        if self._global_caught_up is None:
            return
        horizon = self._global_caught_up - self.settings.count_grace_seconds
        late = sum(1 for inc in increments if inc.second < horizon)
        if late:
            metrics.LATE_EVENTS.inc(late)

    def _check_stored_positions(self) -> bool:
        """Once a PROBE_INTERVAL, re-seek if Redis holds other positions than ours; True if so.

        A batch notices lost writes only for its own partitions: a partition with no new
        records would otherwise never get back what Redis lost (nor be reported lagging).
        """
        now = time.monotonic()
        if now - self._last_check < PROBE_INTERVAL or not self._next:
            return False
        self._last_check = now
        stored = self._with_redis(self.store.positions)
        if stored is None:
            return False
        differ = {p: (stored.get(p), n) for p, n in self._next.items() if stored.get(p) != n}
        if not differ:
            return False
        log.warning("redis positions differ from ours; re-seeking", extra={"positions": differ})
        self.seek_to_stored(self.consumer.assignment())
        self._probe = None
        return True

    # -- completeness -----------------------------------------------------------------

    def _advance_caught_up(self) -> None:
        """Move caught_up_at forward for partitions that reached a probed log end."""
        now = time.time()
        if self._probe is None and now - self._last_probe >= PROBE_INTERVAL:
            assigned = [tp for tp in self.consumer.assignment() if tp.topic == self.topic]
            if assigned:
                self._last_probe = now
                # The probe's start time is a safe lower bound of when the ends held.
                try:
                    ends = self.consumer.end_offsets(assigned, timeout_ms=5000)
                except KafkaError as error:
                    # The broker is away (restarting): poll() waits for it; probe later.
                    log.warning("log-end probe failed", extra={"error": str(error)})
                    return
                self._probe = (now, {tp.partition: off for tp, off in ends.items()})
        if self._probe is None:
            return
        probed_at, ends = self._probe
        reached = {}
        for partition, end in ends.items():
            position = self._next.get(partition)
            lag = end - (position if position is not None else 0)
            metrics.CONSUMER_LAG.labels(partition=str(partition)).set(max(lag, 0))
            if (position is not None and position >= end) or end == 0:
                reached[partition] = probed_at
        if len(reached) < len(ends):
            # Keep waiting for the rest; those reached are not moved past the probe time.
            for partition in reached:
                ends.pop(partition)
            if reached:
                self._store_caught_up(reached)
            return
        self._probe = None
        self._store_caught_up(reached)

    def _store_caught_up(self, reached: dict[int, float]) -> None:
        partitions = len(self.consumer.partitions_for_topic(self.topic) or ())
        stored = self._with_redis(lambda: self.store.set_caught_up(reached, partitions))
        if stored is None:
            return
        previous, self._global_caught_up = self._global_caught_up, stored
        if stored is not None:
            metrics.CAUGHT_UP_AT.set(stored)
        if stored != previous:
            self._with_redis(lambda: self.store.publish_progress(stored))

    def _with_redis(self, call: Callable[[], Any]) -> Any:
        """Run a best-effort Redis call; None when Redis is unreachable."""
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            log.warning("redis unreachable", extra={"error": str(error)})
            return None
