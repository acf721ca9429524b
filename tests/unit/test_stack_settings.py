"""The local stack's settings (config/stack.py): defaults, overrides, bad values named."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from config import ConfigError, StackSettings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    s = StackSettings.from_env({})
    assert s.state_dir == ROOT / ".state"
    assert s.cache_dir == Path.home() / ".cache" / "prc"
    assert s.log_dir == Path(tempfile.gettempdir())
    assert (s.kafka_port, s.kafka_controller_port, s.redis_port) == (9092, 9093, 6379)
    assert (s.redis_cluster_nodes, s.redis_cluster_port) == (0, 7001)
    assert (s.topic_partitions, s.kafka_heap, s.secure) == (6, "768m", False)
    assert (s.record_events_topic, s.redis_key_prefix) == ("record-events", "prc")
    assert (s.test_passes, s.test_redis_cluster_url) == (None, None)
    assert not s.kafka_given and not s.redis_given
    assert StackSettings() == s


@pytest.mark.parametrize(
    ("name", "raw", "field", "value"),
    [
        ("PRC_STATE_DIR", "/tmp/st", "state_dir", Path("/tmp/st")),
        ("PRC_CACHE_DIR", "/tmp/ca", "cache_dir", Path("/tmp/ca")),
        ("PRC_LOG_DIR", "/tmp/lo", "log_dir", Path("/tmp/lo")),
        ("STACK_KAFKA_PORT", "19092", "kafka_port", 19092),
        ("STACK_KAFKA_CONTROLLER_PORT", "19999", "kafka_controller_port", 19999),
        ("STACK_REDIS_PORT", "16379", "redis_port", 16379),
        ("STACK_REDIS_CLUSTER_NODES", "3", "redis_cluster_nodes", 3),
        ("STACK_REDIS_CLUSTER_PORT", "17001", "redis_cluster_port", 17001),
        ("STACK_TOPIC_PARTITIONS", "12", "topic_partitions", 12),
        ("STACK_KAFKA_HEAP", "1g", "kafka_heap", "1g"),
        ("STACK_SECURE", "1", "secure", True),
        ("RECORD_EVENTS_TOPIC", "t", "record_events_topic", "t"),
        ("REDIS_KEY_PREFIX", "p", "redis_key_prefix", "p"),
        ("TEST_PASSES", "cluster", "test_passes", "cluster"),
        ("TEST_REDIS_CLUSTER_URL", "redis://h:1/0", "test_redis_cluster_url", "redis://h:1/0"),
        ("KAFKA_BOOTSTRAP_SERVERS", "k:9", "kafka_bootstrap_servers", "k:9"),
        ("REDIS_URL", "redis://r:1/0", "redis_url", "redis://r:1/0"),
        ("REDIS_URL_FILE", "/run/secrets/u", "redis_url_file", "/run/secrets/u"),
    ],
)
def test_each_variable_overrides_its_default(
    name: str, raw: str, field: str, value: object
) -> None:
    assert getattr(StackSettings.from_env({name: raw}), field) == value


def test_an_empty_value_counts_as_unset() -> None:
    names = ["STACK_KAFKA_PORT", "STACK_SECURE", "PRC_STATE_DIR", "REDIS_URL", "TEST_PASSES"]
    assert StackSettings.from_env(dict.fromkeys(names, "")) == StackSettings.from_env({})


def test_the_controller_port_defaults_to_the_kafka_port_plus_one() -> None:
    assert StackSettings.from_env({"STACK_KAFKA_PORT": "39092"}).kafka_controller_port == 39093
    both = {"STACK_KAFKA_PORT": "39092", "STACK_KAFKA_CONTROLLER_PORT": "40000"}
    assert StackSettings.from_env(both).kafka_controller_port == 40000


def test_servers_of_ones_own_are_seen_as_given() -> None:
    assert StackSettings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k:9"}).kafka_given
    assert StackSettings.from_env({"REDIS_URL": "redis://r:1/0"}).redis_given
    assert StackSettings.from_env({"REDIS_URL_FILE": "/run/secrets/u"}).redis_given


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("STACK_KAFKA_PORT", "ninety"),
        ("STACK_KAFKA_PORT", "0"),
        ("STACK_KAFKA_PORT", "65536"),
        ("STACK_KAFKA_CONTROLLER_PORT", "9093.5"),
        ("STACK_REDIS_PORT", "-1"),
        ("STACK_REDIS_CLUSTER_NODES", "three"),
        ("STACK_REDIS_CLUSTER_NODES", "-3"),
        ("STACK_REDIS_CLUSTER_PORT", "x"),
        ("STACK_TOPIC_PARTITIONS", "0"),
        ("STACK_SECURE", "maybe"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_its_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        StackSettings.from_env({name: raw})


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("False", False), ("no", False)],
)
def test_stack_secure_reads_as_a_boolean(raw: str, value: bool) -> None:
    assert StackSettings.from_env({"STACK_SECURE": raw}).secure is value


def test_it_is_frozen() -> None:
    with pytest.raises(AttributeError):
        StackSettings().kafka_port = 1  # type: ignore[misc]
