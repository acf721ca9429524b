"""Topic names, dead-letter headers, and idempotent creation of the record-events topics."""

from __future__ import annotations

import logging
import socket

from kafka import KafkaAdminClient
from kafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from config import Settings
from events.connections import KafkaTarget, bootstrap_servers, kafka_config
from events.schema import EventError

log = logging.getLogger(__name__)

DLQ_SUFFIX = ".dlq"
# Headers on every dead-lettered message; values are UTF-8 (partition and offset in decimal).
HEADER_ERROR_CODE = "dlq.error.code"
HEADER_ERROR_MESSAGE = "dlq.error.message"
HEADER_SOURCE_TOPIC = "dlq.source.topic"
HEADER_SOURCE_PARTITION = "dlq.source.partition"
HEADER_SOURCE_OFFSET = "dlq.source.offset"
# The topic is the event store: nothing may age out of it (nor out of its DLQ).
TOPIC_CONFIGS = {"retention.ms": "-1"}


class KafkaUnavailable(EventError):
    """The Kafka cluster could not be reached or did not do what was asked in time."""


def record_events_topic(settings: Settings) -> str:
    """The topic record events are published to."""
    return settings.record_events_topic


def dlq_topic_for(topic: str) -> str:
    """The dead-letter topic of `topic`: `<topic>.dlq`."""
    return topic + DLQ_SUFFIX


def dlq_topic(settings: Settings) -> str:
    """The dead-letter topic of the settings' record-events topic."""
    return dlq_topic_for(settings.record_events_topic)


def host_port(address: str) -> tuple[str, int]:
    """(host, port) of one bootstrap address; port 9092 when none is given."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit():  # no port given: Kafka's default
        return address.strip().strip("[]"), 9092
    return host.strip("[]"), int(port)


def check_reachable(servers: str, timeout_s: float = 3.0) -> None:
    """Raise KafkaUnavailable at once unless some bootstrap server accepts a TCP connection.

    A client would otherwise retry until its bootstrap timeout, and kafka-python leaves its
    I/O thread running when the constructor gives up.
    """
    errors = []
    for address in servers.split(","):
        try:
            socket.create_connection(host_port(address), timeout=timeout_s).close()
            return
        except OSError as exc:
            errors.append(f"{address.strip()}: {exc.strerror or exc}")
    raise KafkaUnavailable(f"cannot reach Kafka at {servers} ({'; '.join(errors)})")


def admin_client(kafka: KafkaTarget, timeout_s: float = 15.0) -> KafkaAdminClient:
    """A connected admin client; raises KafkaUnavailable if the cluster cannot be reached."""
    servers = bootstrap_servers(kafka)
    check_reachable(servers, min(timeout_s, 3.0))
    try:
        return KafkaAdminClient(
            **kafka_config(kafka),
            client_id="prc-topics",
            bootstrap_timeout_ms=int(timeout_s * 1000),
            request_timeout_ms=int(timeout_s * 1000),
        )
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {servers} within {timeout_s:g}s: {exc}"
        ) from exc


def ensure_topics(
    kafka: KafkaTarget,
    topic: str,
    partitions: int = 6,
    dlq_partitions: int = 1,
    timeout_s: float = 30.0,
) -> None:
    """Create `topic` and `<topic>.dlq` unless they exist, then wait until metadata shows them.

    Topics that already exist are left as they are (partitions and configs unchanged).
    Raises KafkaUnavailable when the cluster cannot be reached, refuses, or is not ready in time.
    """
    wanted = {
        topic: {"num_partitions": partitions, "replication_factor": -1, "configs": TOPIC_CONFIGS},
        dlq_topic_for(topic): {
            "num_partitions": dlq_partitions,
            "replication_factor": -1,
            "configs": TOPIC_CONFIGS,
        },
    }
    admin = admin_client(kafka, timeout_s)
    try:
        result = admin.create_topics(wanted, raise_errors=False)
        for entry in result["topics"]:
            if entry["error_code"] == 0:
                log.info("created topic %s", entry["name"])
                continue
            error = for_code(entry["error_code"])
            if error is TopicAlreadyExistsError:
                continue
            raise KafkaUnavailable(
                f"cannot create topic {entry['name']!r}: {error.__name__}"
                f" {entry.get('error_message') or ''}".rstrip()
            )
        admin.wait_for_topics(list(wanted), timeout_ms=int(timeout_s * 1000))
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"topics {sorted(wanted)} not ready on {bootstrap_servers(kafka)}: {exc}"
        ) from exc
    finally:
        admin.close()


def require_topic(kafka: KafkaTarget, topic: str, timeout_s: float = 15.0) -> int:
    """Return the partition count of `topic`; raise KafkaUnavailable if it does not exist.

    Asked through the admin API, whose metadata requests never auto-create topics.
    """
    admin = admin_client(kafka, timeout_s)
    try:
        (info,) = admin.describe_topics([topic])
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot describe topic {topic!r}: {exc}") from exc
    finally:
        admin.close()
    if info["error_code"]:
        raise KafkaUnavailable(
            f"topic {topic!r} is not available ({for_code(info['error_code']).__name__}); "
            "create it first (events.topics.ensure_topics or "
            "`python -m events.produce --ensure-topics`)"
        )
    return len(info["partitions"])


def delete_topics(kafka: KafkaTarget, topics: list[str], timeout_s: float = 15.0) -> None:
    """Delete `topics`; topics that do not exist are ignored (for tests and benchmarks)."""
    admin = admin_client(kafka, timeout_s)
    try:
        result = admin.delete_topics(topics, raise_errors=False)
        for entry in result["topics"]:
            code = entry["error_code"]
            if code and for_code(code) is not UnknownTopicOrPartitionError:
                raise KafkaUnavailable(
                    f"cannot delete topic {entry['name']!r}: {for_code(code).__name__}"
                )
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot delete topics {topics}: {exc}") from exc
    finally:
        admin.close()


def end_offsets(kafka: KafkaTarget, topic: str) -> dict[int, int]:
    """The topic's log-end offset per partition, asked of the broker now."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_config(kafka))
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
