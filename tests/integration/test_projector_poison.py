"""Bad events interleaved with good ones: the good are counted, the bad dead-lettered."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import replace

import pytest
import redis
from kafka import KafkaConsumer

from config import Settings
from events import topics as names
from events.publisher import Publisher
from scripts.harness import wait_until
from tests.integration.projection import running_projector, store_for, wait_projected

GOOD = {
    "schema_version": 1,
    "type": "record.created",
    "org_id": "org-p",
    "record_id": "r",
    "occurred_at": "2026-03-26T10:44:12.345Z",
}


def _good(i: int) -> tuple[bytes, bytes]:
    return b"org-p", json.dumps({**GOOD, "event_id": f"good-{i}"}).encode()


def _with(**changes: object) -> bytes:
    body = {**GOOD, "event_id": str(uuid.uuid4()), **changes}
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


BAD: list[tuple[str, bytes | None, bytes | None]] = [
    ("not_json", b"org-p", b"{not json"),
    ("not_json", b"org-p", b""),
    ("not_utf8", b"org-p", b"\xff\xfe{}"),
    ("not_object", b"org-p", b"[1, 2, 3]"),
    ("value_missing", b"org-p", None),
    ("missing_field", b"org-p", _with(occurred_at=None)),
    ("missing_field", b"org-p", _with(event_id=None)),
    ("missing_field", b"org-p", json.dumps({"org_id": "org-p"}).encode()),
    ("bad_occurred_at", b"org-p", _with(occurred_at="2026-03-26T10:44:12")),
    ("bad_occurred_at", b"org-p", _with(occurred_at="26/03/2026")),
    ("bad_occurred_at", b"org-p", _with(occurred_at="1969-12-31T23:59:59Z")),
    ("bad_org_id", b"org p", _with(org_id="org p")),
    ("bad_org_id", b"{org}", _with(org_id="{org}")),
    ("bad_org_id", b"-org", _with(org_id="-org")),
    ("bad_org_id", b"x" * 129, _with(org_id="x" * 129)),
    ("wrong_type", b"org-p", _with(event_id=42)),
    ("bad_event_id", b"org-p", _with(event_id="")),
    ("bad_schema_version", b"org-p", _with(schema_version=2)),
    ("value_too_large", b"org-p", _with(padding="x" * 20_000)),
    ("key_mismatch", b"org-other", _with()),
]


@pytest.mark.parametrize("batch", [1, 5000], ids=["one-per-batch", "large-batches"])
def test_bad_events_go_to_the_dlq_and_never_stop_the_projector(
    settings: Settings, topics: str, redis_client: redis.Redis, batch: int
) -> None:
    settings = replace(settings, projector_max_batch=batch)
    sent_bad = []
    with Publisher(settings.kafka_bootstrap_servers, settings.record_events_topic) as publisher:
        good = 0
        for code, key, value in BAD:
            for _ in range(3):
                publisher.publish_raw(*_good(good))
                good += 1
            publisher.publish_raw(key, value)
            sent_bad.append((code, key, value))
        # Another event type shares the topic: skipped, not dead-lettered.
        publisher.publish_raw(b"org-p", _with(type="record.deleted"))
        for _ in range(3):
            publisher.publish_raw(*_good(good))
            good += 1

    with running_projector(settings):
        wait_projected(settings, redis_client)
        dlq = _read_dlq(settings, len(sent_bad))

    # The good events after every bad one were counted: the projector never stopped.
    assert store_for(settings, redis_client).count("org-p", 0, 253402300799) == good
    assert Counter((m["code"], m["key"], m["value"]) for m in dlq) == Counter(sent_bad)
    for message in dlq:
        assert message["source_topic"] == settings.record_events_topic
        assert message["message"]
        assert message["offset"] >= 0


def _read_dlq(settings: Settings, expected: int) -> list[dict[str, object]]:
    consumer = KafkaConsumer(
        settings.dlq_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    seen: list[dict[str, object]] = []

    def collect() -> bool:
        for record in consumer.poll(timeout_ms=500).values():
            for r in record:
                headers = {k: v.decode() for k, v in r.headers}
                seen.append(
                    {
                        "code": headers[names.HEADER_ERROR_CODE],
                        "key": r.key,
                        "value": r.value,
                        "message": headers[names.HEADER_ERROR_MESSAGE],
                        "source_topic": headers[names.HEADER_SOURCE_TOPIC],
                        "offset": int(headers[names.HEADER_SOURCE_OFFSET]),
                        "partition": int(headers[names.HEADER_SOURCE_PARTITION]),
                    }
                )
        return len(seen) >= expected

    try:
        wait_until(collect, 60, f"{expected} DLQ messages")
    finally:
        consumer.close()
    return seen
