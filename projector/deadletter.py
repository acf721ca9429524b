"""The dead-letter topic: a bad event goes there with its original key and value, and headers
naming the error and where it came from; the projector then moves on."""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaProducer

from config import Settings
from events import topics
from events.codec import InvalidEvent
from events.connections import kafka_config
from projector import metrics

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_SECONDS = 30


class DeadLetters:
    """Sends bad records to `<topic>.dlq` (producer created on first use). A rebuild's
    (`replay`) sends nothing: the live projectors dead-lettered those records when they first
    read them, and a rebuild re-reads the whole topic."""

    def __init__(self, settings: Settings, *, replay: bool = False) -> None:
        self._settings = settings
        self._replay = replay
        self._producer: KafkaProducer | None = None

    def send(self, topic: str, partition: int, record: Any, error: InvalidEvent) -> None:
        """Queue one bad record for the DLQ (call `flush` before the batch is applied)."""
        if self._replay:
            metrics.EVENTS_INVALID_REPLAYED.labels(code=error.code).inc()
            return
        headers = [
            (topics.HEADER_ERROR_CODE, error.code.encode()),
            (topics.HEADER_ERROR_MESSAGE, str(error.message).encode()[:1024]),
            (topics.HEADER_SOURCE_TOPIC, topic.encode()),
            (topics.HEADER_SOURCE_PARTITION, str(partition).encode()),
            (topics.HEADER_SOURCE_OFFSET, str(record.offset).encode()),
        ]
        self._dlq().send(
            self._settings.dlq_topic, key=record.key, value=record.value, headers=headers
        )
        metrics.EVENTS_DEAD_LETTERED.labels(code=error.code).inc()
        log.warning(
            "event dead-lettered",
            extra={
                "code": error.code,
                "error": error.message,
                "partition": partition,
                "offset": record.offset,
            },
        )

    def flush(self) -> None:
        """Wait until every queued record is in the DLQ (a crash after this re-sends them)."""
        if self._producer is not None:
            self._producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Release the producer."""
        if self._producer is not None:
            self._producer.close(timeout=10)

    def _dlq(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                **kafka_config(self._settings),
                client_id=f"{self._settings.projector_group_id}-dlq",
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                max_request_size=2 * 1024 * 1024,
            )
        return self._producer
