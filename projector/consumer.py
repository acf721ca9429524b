"""The poll loop: Kafka records in, counters and positions out to Redis, bad events to the DLQ.

Order of effects for one batch, and why it is crash-safe at any instant:
1. decode every record; bad ones are sent to the DLQ and the DLQ is flushed (a crash
   after this re-sends them: the DLQ is at-least-once, its headers name the source
   offset so duplicates are recognisable);
2. the store applies each org's increments atomically with that org's per-partition
   offsets, then raises the partition positions (`CounterStore.apply`);
3. offsets are committed to Kafka, for lag tooling only: a partition is read from the
   position stored in Redis, never from Kafka's.

Membership: several projectors share the topic in one consumer group. Which partitions this
member owns, and what it knows of each, lives in `projector.partitions.PartitionTracker`;
the rebalance callbacks (kafka-python's I/O thread, while `poll()` blocks this loop) only
update it and pause newly assigned partitions, and this loop does the I/O: it reads the
paused partitions' positions from Redis (as long as Redis is away they stay paused), seeks
and resumes them (docs/design.md, "Scale-out").

Generations: a live projector applies the generation the generation record names as its
target (`projector.generation`), read before each batch is handed on. When the target
changes (a rebuild asks live projectors to move, or an abort sends them back), the batch in
flight lands first, then every partition re-reads its position from the new generation (the
same path as a rebalance), and the projector acknowledges the move. A rebuild
(`projector.rebuild`) runs this same loop on its own generation, reading every partition
itself, in a consumer group of its own (docs/design.md, "Rebuilding the projection").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from config import Settings
from events.codec import InvalidEvent, SkippedEvent, decode_for_count
from events.connections import kafka_config
from events.redis_client import UNAVAILABLE, connect
from projector import keys, layout, metrics
from projector.applier import Applier, Batch
from projector.deadletter import DeadLetters
from projector.follower import GenerationFollower
from projector.generation import Generation
from projector.partitions import PartitionTracker
from projector.progress import Progress, with_redis
from projector.store import CounterStore, Increment, PositionsDiverged

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
CHECK_INTERVAL = 1.0  # seconds between checks of Redis's positions against ours
# How long a revocation waits for the batch in flight to land, so the next owner starts from
# it. The callback holds kafka-python's I/O loop (heartbeats too): keep it well below the
# session timeout. A batch that takes longer still lands safely (positions only move forward).
REVOKE_SETTLE_SECONDS = 2.0
METADATA_MAX_AGE_MS = 10_000
SESSION_TIMEOUT_MS = 10_000
ASSIGNORS = {
    "range": RangePartitionAssignor,
    "roundrobin": RoundRobinPartitionAssignor,
    "cooperative-sticky": CooperativeStickyAssignor,
}


class _Rebalance(ConsumerRebalanceListener):
    """Hands Kafka's membership changes to the projector (runs on kafka-python's I/O thread)."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.projector.revoked(revoked, settle=True)

    def on_partitions_lost(self, lost: Any) -> None:
        # Evicted: another member may own these already; nothing of ours is worth waiting for.
        self.projector.revoked(lost, settle=False)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.projector.assigned(assigned)


class Projector:
    """One member of the projector consumer group, or (`rebuild`) a rebuild's reader of every
    partition into that generation alone."""

    def __init__(
        self,
        settings: Settings,
        redis_client: redis.Redis | None = None,
        *,
        rebuild: Generation | None = None,
    ) -> None:
        self.settings = settings
        self.topic = settings.record_events_topic
        self.redis = redis_client or connect(
            settings, name=f"{settings.redis_key_prefix}:projector", timeout=5
        )
        self._rebuild = rebuild
        # Unknown until the record is read (a live projector positions nothing before that).
        self.generation: Generation | None = rebuild
        self.store = self._store_for(
            rebuild or Generation(keys.FIRST_GENERATION, settings.dedup_window_seconds)
        )
        self.tracker = PartitionTracker()
        self._stop = threading.Event()
        self._follower = None if rebuild else GenerationFollower(self.redis, settings, self._stop)
        self._last_check = 0.0
        self._dead = DeadLetters(settings, replay=rebuild is not None)
        self._applier = Applier(self.store, self._stop)
        self.consumer = KafkaConsumer(
            **kafka_config(settings),
            group_id=settings.projector_group_id,
            client_id=f"{settings.projector_group_id}-consumer",
            group_instance_id=settings.projector_instance_id,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            partition_assignment_strategy=(ASSIGNORS[settings.projector_assignor],),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.projector_max_batch,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=100,
            # kafka-python backs off up to 30 s between reconnects (Java: 1 s), so after a
            # broker restart the projector idled for up to that long with the broker back.
            reconnect_backoff_max_ms=1000,
            # A member whose group was assigned before the broker's metadata showed the topic
            # (just created, or partitions added) holds an empty or short assignment until its
            # next metadata refresh: 5 minutes by default. One small request every 10 s.
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        self.progress = Progress(
            self.consumer, self.tracker, self.store, self.topic, notify=rebuild is None
        )
        if rebuild is None:
            self.consumer.subscribe([self.topic], listener=_Rebalance(self))
        else:
            # A rebuild reads every partition itself: no group membership, no rebalance wait
            # when it is run again after a kill; its group holds its commits (lag tooling).
            tps = self._tps(sorted(self.consumer.partitions_for_topic(self.topic)))
            if not tps:
                raise KafkaError(f"topic {self.topic!r} has no partitions (does it exist?)")
            self.consumer.assign(tps)
            self.assigned(tps)

    def _store_for(self, generation: Generation) -> CounterStore:
        return CounterStore(
            self.redis,
            self.settings.redis_key_prefix,
            self.topic,
            generation.dedup_window_seconds,
            generation=generation.number,
        )

    # -- lifecycle --------------------------------------------------------------------

    def request_stop(self) -> None:
        """Finish the batch in hand, then leave `run`."""
        self._stop.set()

    def wait(self, seconds: float) -> None:
        """Pause the poll loop (a rebuild holding to its rate); a stop request ends it."""
        self._stop.wait(seconds)

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
            self._dead.close()
            log.info("projector stopped", extra={"topic": self.topic})

    # -- rebalance (kafka-python's I/O thread) -------------------------------------------

    def assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """New partitions stay paused until their positions are read from Redis (`step`)."""
        pending = self.tracker.assign(tp.partition for tp in assigned if tp.topic == self.topic)
        if pending:
            self.consumer.pause(*self._tps(pending))
        self._gauge_partitions()
        log.info("partitions assigned", extra={"pending": pending})

    def revoked(self, revoked: Iterable[TopicPartition], *, settle: bool) -> None:
        """Forget partitions another member takes over, once the batch in flight has landed
        (or REVOKE_SETTLE_SECONDS passed: its outcome is then ignored for them)."""
        mine = [tp.partition for tp in revoked if tp.topic == self.topic]
        if not mine:
            return
        if settle and not self._applier.settle(REVOKE_SETTLE_SECONDS):
            log.warning("revoking partitions with a batch still in flight", extra={"p": mine})
        dropped = self.tracker.revoke(mine)
        for partition in dropped:
            with contextlib.suppress(KeyError):  # its lag is the new owner's to report
                metrics.CONSUMER_LAG.remove(str(partition))
        self._gauge_partitions()
        log.info("partitions revoked", extra={"partitions": dropped, "settled": settle})

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
            if not self.tracker.is_ready(tp.partition):
                continue  # not ours (any more), or not yet positioned: never applied
            for record in records:
                bad += self._collect(tp, record, increments)
            positions[tp.partition] = records[-1].offset + 1
        if bad:
            self._dead.flush()
        # Build the Lua calls now, while Redis still runs the previous batch's.
        prepared = self.store.prepare(increments)
        if (
            not self._finish_previous()
            or self._check_stored_positions()
            or self._follow_generation()
        ):
            self._resolve_pending()
            return 0  # re-sought: this batch was read from positions Redis no longer backs
        self._resolve_pending()
        self.progress.advance()
        if positions:
            batch = Batch(
                increments,
                positions,
                self.tracker.expected(positions),
                self.tracker.epochs(positions),
                prepared,
            )
            self._applier.submit(batch)
        return sum(len(r) for r in polled.values())

    def _finish_previous(self) -> bool:
        """Wait for the batch in flight; False when Redis diverged and we re-sought."""
        outcome = self._applier.wait()
        if outcome is None:
            return True
        if isinstance(outcome, PositionsDiverged):
            # Redis lost recent writes (e.g. killed between AOF fsyncs), or another member
            # moved a partition on: re-read from what it holds; per-org offsets keep it exact.
            self._reseek("redis positions differ from ours", str(outcome))
            return False
        batch, result = outcome
        self.progress.count_late(batch.increments, self.settings.count_grace_seconds)
        self._commit(self.tracker.applied(batch.epochs, batch.positions))
        if result.orgs and self._rebuild is None:
            caught_up_at = self.progress.caught_up_at
            with_redis(lambda: self.store.publish_changes(result, caught_up_at))
        return True

    # -- generations --------------------------------------------------------------------

    def _follow_generation(self) -> bool:
        """Apply the generation the record names now (a rebuild: its own). True when ready
        partitions were made pending, to read their positions from the new generation."""
        if self._follower is None:
            return False
        target = self._follower.target()
        if target is None:  # stopping while Redis is away: this batch is not handed on
            return bool(self._unready_all())
        return target != self.generation and self._move_to(target)

    def _move_to(self, target: Generation) -> bool:
        """Apply `target` from now on (the batch in flight has landed); True when partitions
        must read their positions again."""
        store = self._store_for(target)
        try:
            layout.require(self.redis, self.settings.redis_key_prefix, store)
        except UNAVAILABLE as error:  # asked again before the next batch is handed on
            log.warning("redis unreachable", extra={"error": str(error)})
            return bool(self._unready_all())
        previous, self.generation = self.generation, target
        self.store = store
        self._applier.store = self.store
        self.progress.use(self.store)
        metrics.GENERATION.set(target.number)
        if previous is None:
            log.info("applying generation", extra={"generation": target.number})
            return False
        again = self._unready_all()
        log.info(
            "moving to generation",
            extra={"from": previous.number, "to": target.number, "partitions": again},
        )
        return bool(again)

    def _collect(self, tp: TopicPartition, record: Any, out: list[Increment]) -> int:
        try:
            event = decode_for_count(record.value, record.key)
        except InvalidEvent as error:
            self._dead.send(tp.topic, tp.partition, record, error)
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

    # -- positions ----------------------------------------------------------------------

    def _resolve_pending(self) -> None:
        """Seek and resume paused partitions once Redis tells their positions (and Kafka their
        committed offsets, the floor of our commits); while either is away they stay paused."""
        pending = self.tracker.pending()
        if not pending or self.generation is None:
            return
        stored = with_redis(self.store.positions)
        if stored is None:
            return
        tps = self._tps(pending)
        try:
            committed = {tp.partition: self.consumer.committed(tp, timeout_ms=5000) for tp in tps}
        except KafkaError as error:
            log.warning("committed offsets unavailable; retrying", extra={"error": str(error)})
            return
        seeks, commits = self.tracker.resolve(stored, committed, pending)
        for partition, offset in seeks.items():
            tp = TopicPartition(self.topic, partition)
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
        self.consumer.resume(*self._tps(seeks))
        self._commit(commits)
        self._gauge_partitions()
        log.info("partitions positioned from redis", extra={"positions": seeks})

    def _check_stored_positions(self) -> bool:
        """Once a CHECK_INTERVAL, re-seek if Redis holds other positions than ours; True if so.

        A batch notices lost writes only for its own partitions: a partition with no new
        records would otherwise never get back what Redis lost (nor be reported lagging).
        Also re-sends commits Kafka has not acknowledged yet.
        """
        now = time.monotonic()
        if now - self._last_check < CHECK_INTERVAL:
            return False
        self._last_check = now
        self._commit(self.tracker.commits_due())
        if not self.tracker.ready():
            return False
        stored = with_redis(self.store.positions)
        if stored is None:
            return False
        differ = self.tracker.diverged(stored)
        if not differ:
            return False
        self._reseek("redis positions differ from ours", str(differ))
        return True

    def _reseek(self, reason: str, detail: str) -> None:
        """Pause every ready partition to read its position from Redis again."""
        self._unready_all()
        metrics.RESEEKS.inc()
        log.warning(f"{reason}; re-seeking", extra={"detail": detail})

    def _unready_all(self) -> list[int]:
        """Pause every ready partition until its position is read again (`_resolve_pending`)."""
        again = self.tracker.unready()
        if again:
            self.consumer.pause(*self._tps(again))
        return again

    def _commit(self, commits: Mapping[int, int]) -> None:
        """Commit these positions to Kafka (asynchronously); acknowledged ones raise the floor."""
        if not commits:
            return
        offsets = {
            TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in commits.items()
        }
        sent = dict(commits)

        def acknowledged(_offsets: Any, response: Any) -> None:
            if not isinstance(response, Exception):
                self.tracker.committed(sent)

        self.consumer.commit_async(offsets, callback=acknowledged)

    # -- helpers ------------------------------------------------------------------------

    def _tps(self, partitions: Iterable[int]) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in partitions]

    def _gauge_partitions(self) -> None:
        ready, owned = len(self.tracker.ready()), len(self.tracker.owned())
        metrics.PARTITIONS.labels(state="ready").set(ready)
        metrics.PARTITIONS.labels(state="pending").set(owned - ready)
