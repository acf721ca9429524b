"""An idempotent Kafka producer for record events, keyed by org_id."""

from __future__ import annotations

import threading
from types import TracebackType

from kafka import KafkaProducer
from kafka.codec import has_lz4
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2
from kafka.producer.future import FutureRecordMetadata

from events.codec import encode
from events.connections import KafkaTarget, bootstrap_servers, kafka_config
from events.schema import EventError, RecordCreated
from events.topics import KafkaUnavailable, require_topic

# How often (in sends) to re-read the partition count, so a grown topic is noticed.
_PARTITION_REFRESH_EVERY = 8192


class PublishError(EventError):
    """One or more messages could not be delivered."""


class Publisher:
    """Publishes record events with acks=all and idempotence; `close()` flushes.

    Delivery is asynchronous: a failed send surfaces as PublishError from the next
    `flush()` or `close()`. Compression is off by default, because every consumer then needs
    the codec too; `compression="lz4"` works when the lz4 package is installed.
    """

    def __init__(
        self,
        kafka: KafkaTarget,
        topic: str,
        *,
        linger_ms: int = 5,
        batch_size: int = 256 * 1024,
        compression: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        if compression not in (None, "lz4"):
            raise ValueError(f"compression must be None or 'lz4', got {compression!r}")
        if compression == "lz4" and not has_lz4():
            raise ValueError("compression 'lz4' needs the lz4 package, which is not installed")
        # Also reaches the cluster first, so a wrong address fails fast with a clear message.
        require_topic(kafka, topic, timeout_s)
        try:
            self._producer = KafkaProducer(
                **kafka_config(kafka),
                client_id="prc-publisher",
                enable_idempotence=True,
                acks="all",
                linger_ms=linger_ms,
                batch_size=batch_size,
                compression_type=compression,
                # A misspelt topic must fail, not appear with broker defaults (and retention).
                # kafka-python 3.0.12 drops this setting (its connection manager builds the
                # cluster metadata without it): `require_topic` above is what enforces it.
                allow_auto_create_topics=False,
                bootstrap_timeout_ms=int(timeout_s * 1000),
                max_block_ms=int(timeout_s * 1000),
            )
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"cannot reach Kafka at {bootstrap_servers(kafka)}: {exc}"
            ) from exc
        self.topic = topic
        self._send = self._producer.send
        self._lock = threading.Lock()
        self._failures = 0
        self._first_failure: BaseException | None = None
        self._sends = 0
        self._partition_of: dict[bytes, int] = {}
        try:
            self._partitions = self._read_partitions()
        except BaseException:
            self._producer.close(timeout=0)
            raise

    def _read_partitions(self) -> list[int]:
        try:
            return sorted(self._producer.partitions_for(self.topic))
        except KafkaError as exc:
            raise KafkaUnavailable(f"no partitions for topic {self.topic!r}: {exc}") from exc

    def _partition(self, key: bytes) -> int:
        # The Java client's default partitioner (murmur2 of the key), which kafka-python also
        # uses; computed once per key because the pure-Python hash costs more than the send.
        partition = self._partitions[(murmur2(key) & 0x7FFFFFFF) % len(self._partitions)]
        self._partition_of[key] = partition
        return partition

    def _on_error(self, exc: BaseException) -> None:
        with self._lock:
            self._failures += 1
            if self._first_failure is None:
                self._first_failure = exc

    def publish(self, event: RecordCreated) -> FutureRecordMetadata:
        """Queue one event, keyed by its org_id."""
        key, value = encode(event)
        return self.publish_raw(key, value)

    def publish_raw(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> FutureRecordMetadata:
        """Queue a message as given (for invalid-event tests and benchmarks)."""
        self._sends += 1
        if self._sends % _PARTITION_REFRESH_EVERY == 0:
            partitions = self._read_partitions()
            if partitions != self._partitions:
                self._partitions, self._partition_of = partitions, {}
        partition = None
        if key is not None:
            partition = self._partition_of.get(key)
            if partition is None:
                partition = self._partition(key)
        try:
            future = self._send(self.topic, value, key, headers, partition)
        except KafkaError as exc:  # e.g. a record over max_request_size, or a send timeout
            raise PublishError(f"cannot queue a message for {self.topic!r}: {exc}") from exc
        future.add_errback(self._on_error)
        return future

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued message is delivered; raise PublishError if any failed."""
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise PublishError(f"messages to {self.topic!r} not delivered: {exc}") from exc
        with self._lock:
            failures, first = self._failures, self._first_failure
            self._failures, self._first_failure = 0, None
        if failures:
            raise PublishError(
                f"{failures} message(s) to {self.topic!r} failed; the first: {first!r}"
            ) from first

    def close(self, timeout_s: float | None = None) -> None:
        """Flush, then release the producer (even when the flush fails)."""
        try:
            self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
