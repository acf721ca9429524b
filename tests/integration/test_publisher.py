"""Publisher, topics and the produce CLI against the real broker: what goes in comes back."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta, timezone

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource
from kafka.consumer.fetcher import ConsumerRecord
from kafka.partitioner.default import murmur2

from config import Settings
from events.codec import InvalidEvent, decode
from events.produce import Plan, main, produce
from events.publisher import Publisher, PublishError
from events.schema import RecordCreated
from events.topics import KafkaUnavailable, dlq_topic_for, ensure_topics

pytestmark = pytest.mark.integration


def read_all(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    """Every message in `topic` from the beginning, in offset order per partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, "timed out reading the topic back"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def sample_events(n: int, orgs: int) -> list[RecordCreated]:
    base = datetime(2026, 3, 26, 8, tzinfo=UTC)
    tz = timezone(timedelta(hours=2))
    return [
        RecordCreated(
            event_id=f"e-{i}",
            org_id=f"org-{i % orgs}",
            record_id=f"rec-{i}",
            occurred_at=(base + timedelta(seconds=i, milliseconds=i % 1000)).astimezone(
                tz if i % 3 == 0 else UTC
            ),
        )
        for i in range(n)
    ]


def test_published_events_come_back_keyed_and_in_order_per_org(
    settings: Settings, topics: str
) -> None:
    events = sample_events(240, orgs=7)
    with Publisher(settings.kafka_bootstrap_servers, topics) as publisher:
        for event in events:
            publisher.publish(event)

    records = read_all(settings.kafka_bootstrap_servers, topics)
    assert len(records) == len(events)
    by_id = {e.event_id: e for e in events}
    partitions_of: dict[str, set[int]] = defaultdict(set)
    order_of: dict[str, list[str]] = defaultdict(list)
    for record in records:
        event = decode(record.value, record.key)
        assert isinstance(event, RecordCreated)
        assert record.key == event.org_id.encode()
        assert event == by_id[event.event_id]
        assert event.occurred_second == by_id[event.event_id].occurred_second
        partitions_of[event.org_id].add(record.partition)
        # Same placement as the Java client's default partitioner, for mixed producers.
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 3
        order_of[event.org_id].append(event.event_id)
    assert all(len(p) == 1 for p in partitions_of.values())
    assert len(set().union(*partitions_of.values())) > 1
    for org, ids in order_of.items():
        assert ids == [e.event_id for e in events if e.org_id == org]


def test_publish_raw_sends_bytes_as_given(settings: Settings, topics: str) -> None:
    sent = [(b"org-1", b"\xff not json"), (None, b"{}"), (b"org-1", None), (b"k", b"")]
    with Publisher(settings.kafka_bootstrap_servers, topics) as publisher:
        for key, value in sent:
            publisher.publish_raw(key, value)
    records = read_all(settings.kafka_bootstrap_servers, topics)
    assert sorted((r.key or b"", r.value or b"") for r in records) == sorted(
        (k or b"", v or b"") for k, v in sent
    )


def test_ensure_topics_is_idempotent_and_keeps_events_forever(
    settings: Settings, topics: str
) -> None:
    ensure_topics(settings.kafka_bootstrap_servers, topics, partitions=6)  # exists: unchanged
    dlq = dlq_topic_for(topics)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([topics, dlq])}
        configs = admin.describe_configs(
            [ConfigResource("topic", topics), ConfigResource("topic", dlq)]
        )["topic"]
    finally:
        admin.close()
    assert described == {topics: 3, dlq: 1}
    assert {name: c["retention.ms"]["value"] for name, c in configs.items()} == {
        topics: "-1",
        dlq: "-1",
    }


def test_a_missing_topic_is_a_clear_error_and_is_not_created(settings: Settings) -> None:
    topic = settings.record_events_topic
    with pytest.raises(KafkaUnavailable, match="create it first"):
        Publisher(settings.kafka_bootstrap_servers, topic)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        assert topic not in admin.list_topics()
    finally:
        admin.close()


def test_an_unreachable_broker_fails_fast_with_a_clear_error() -> None:
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match=r"cannot reach Kafka at 127\.0\.0\.1:1"):
        Publisher("127.0.0.1:1", "record-events")
    with pytest.raises(KafkaUnavailable, match="cannot reach Kafka"):
        ensure_topics("127.0.0.1:1", "record-events")
    assert time.monotonic() - started < 5


def test_a_rejected_message_surfaces_on_flush(settings: Settings, topics: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        admin.alter_configs([ConfigResource("topic", topics, {"max.message.bytes": "2000"})])
    finally:
        admin.close()
    publisher = Publisher(settings.kafka_bootstrap_servers, topics)
    publisher.publish_raw(b"org-1", b"x" * 5000)
    with pytest.raises(PublishError, match="1 message"):
        publisher.close(timeout_s=30)


def test_produce_sends_exactly_what_its_summary_says(settings: Settings, topics: str) -> None:
    plan = Plan(
        orgs=("org-a", "org-b", "org-c", "org-d"),
        count=3000,
        start_ms=1774483200000,
        end_ms=1774569599999,
        pattern="bursty",
        duplicate_ratio=0.1,
        invalid_ratio=0.1,
        seed=5,
    )
    summary = produce(plan, settings.kafka_bootstrap_servers, topics, workers=2, keep_events=True)
    assert summary.sent == 3000

    distinct: dict[str, RecordCreated] = {}
    invalid = valid_messages = 0
    for record in read_all(settings.kafka_bootstrap_servers, topics):
        try:
            event = decode(record.value, record.key)
        except InvalidEvent:
            invalid += 1
            continue
        assert isinstance(event, RecordCreated)
        valid_messages += 1
        distinct[event.event_id] = event
    assert invalid == sum(summary.invalid.values()) == 300
    assert valid_messages - len(distinct) == summary.duplicates == 300
    by_org: dict[str, int] = defaultdict(int)
    for event in distinct.values():
        by_org[event.org_id] += 1
    assert by_org == summary.valid
    assert sorted(summary.events or []) == sorted(
        (e.org_id, e.occurred_second) for e in distinct.values()
    )


def test_produce_cli_prints_a_json_summary(
    settings: Settings, topics: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--bootstrap", settings.kafka_bootstrap_servers, "--topic", topics]
    assert main([*argv, "--org", "org-x", "--count", "50", "--seed", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sent"] == 50
    assert report["valid_by_org"] == {"org-x": 50}
    assert len(read_all(settings.kafka_bootstrap_servers, topics)) == 50
