"""The local stack's settings: where `scripts/` runs its Kafka and Redis, and how the tests and
benches find them.

Read by `python -m scripts.stack` (and `make run` / `make test` through it), `scripts/suite.py`,
the test harness and the benches, never by the service's processes (config.service holds
theirs). The grammar of values is config.environment's; an empty value counts as unset.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from config.environment import ConfigError, parse_bool, parse_int
from config.service import Settings

ROOT = Path(__file__).resolve().parent.parent
HIGHEST_PORT = 65535
# Service settings the stack needs as well (its topic; the ACL of its secured Redis): read by
# config.service's own reader, from these variables alone.
SHARED_WITH_SERVICE = ("RECORD_EVENTS_TOPIC", "REDIS_KEY_PREFIX")


def parse_port(name: str, raw: str) -> int:
    """`raw`, the value of `name`, as a TCP port (1..65535)."""
    port = parse_int(name, raw, minimum=1)
    if port > HIGHEST_PORT:
        raise ConfigError(f"{name} must be <= {HIGHEST_PORT}, got {port}")
    return port


@dataclass(frozen=True)
class StackSettings:
    """Every setting of the local stack, with its default."""

    # PRC_STATE_DIR: the servers' data, logs and pid files.
    state_dir: Path = ROOT / ".state"
    # PRC_CACHE_DIR: Kafka's jars, fetched once; outlives clones.
    cache_dir: Path = Path.home() / ".cache" / "prc"
    # PRC_LOG_DIR: under it, `prc-test-logs/` holds the logs of the tests' child processes.
    log_dir: Path = Path(tempfile.gettempdir())
    kafka_port: int = 9092  # STACK_KAFKA_PORT
    kafka_controller_port: int = 9093  # STACK_KAFKA_CONTROLLER_PORT (default: kafka port + 1)
    redis_port: int = 6379  # STACK_REDIS_PORT
    # STACK_REDIS_CLUSTER_NODES: 0, the single Redis; N >= 3, a Redis Cluster of N masters on
    # STACK_REDIS_CLUSTER_PORT and the next ports.
    redis_cluster_nodes: int = 0
    redis_cluster_port: int = 7001
    topic_partitions: int = 6  # STACK_TOPIC_PARTITIONS
    kafka_heap: str = "768m"  # STACK_KAFKA_HEAP (the JVM's -Xmx)
    secure: bool = False  # STACK_SECURE: Kafka with SASL_SSL, Redis with TLS and ACL users
    record_events_topic: str = "record-events"  # RECORD_EVENTS_TOPIC (config.service's)
    redis_key_prefix: str = "prc"  # REDIS_KEY_PREFIX (config.service's)
    # TEST_PASSES as given (scripts/suite.py checks it: single and/or cluster; unset, both).
    test_passes: str | None = None
    # TEST_REDIS_CLUSTER_URL: a node of a Redis Cluster of one's own for the cluster pass.
    test_redis_cluster_url: str | None = None
    # Servers of one's own: when given, the stack starts none of that kind.
    kafka_bootstrap_servers: str | None = None  # KAFKA_BOOTSTRAP_SERVERS
    redis_url: str | None = None  # REDIS_URL
    redis_url_file: str | None = None  # REDIS_URL_FILE

    @property
    def kafka_given(self) -> bool:
        """Whether KAFKA_BOOTSTRAP_SERVERS names a Kafka of one's own."""
        return self.kafka_bootstrap_servers is not None

    @property
    def redis_given(self) -> bool:
        """Whether REDIS_URL (or REDIS_URL_FILE) names a Redis of one's own."""
        return self.redis_url is not None or self.redis_url_file is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> StackSettings:
        """Read the stack's settings from `env` (default: the process environment)."""

        def given(name: str) -> str | None:
            raw = env.get(name)
            return None if raw is None or raw == "" else raw

        def number(name: str, default: int, minimum: int = 0) -> int:
            raw = given(name)
            return default if raw is None else parse_int(name, raw, minimum)

        def port(name: str, default: int) -> int:
            raw = given(name)
            return default if raw is None else parse_port(name, raw)

        def path(name: str, default: Path) -> Path:
            raw = given(name)
            return default if raw is None else Path(raw)

        kafka_port = port("STACK_KAFKA_PORT", cls.kafka_port)
        secure = given("STACK_SECURE")
        service = Settings.from_env({k: env[k] for k in SHARED_WITH_SERVICE if k in env})
        return cls(
            state_dir=path("PRC_STATE_DIR", cls.state_dir),
            cache_dir=path("PRC_CACHE_DIR", cls.cache_dir),
            log_dir=path("PRC_LOG_DIR", cls.log_dir),
            kafka_port=kafka_port,
            kafka_controller_port=port("STACK_KAFKA_CONTROLLER_PORT", kafka_port + 1),
            redis_port=port("STACK_REDIS_PORT", cls.redis_port),
            redis_cluster_nodes=number("STACK_REDIS_CLUSTER_NODES", cls.redis_cluster_nodes),
            redis_cluster_port=port("STACK_REDIS_CLUSTER_PORT", cls.redis_cluster_port),
            topic_partitions=number("STACK_TOPIC_PARTITIONS", cls.topic_partitions, minimum=1),
            kafka_heap=given("STACK_KAFKA_HEAP") or cls.kafka_heap,
            secure=False if secure is None else parse_bool("STACK_SECURE", secure),
            record_events_topic=service.record_events_topic,
            redis_key_prefix=service.redis_key_prefix,
            test_passes=given("TEST_PASSES"),
            test_redis_cluster_url=given("TEST_REDIS_CLUSTER_URL"),
            kafka_bootstrap_servers=given("KAFKA_BOOTSTRAP_SERVERS"),
            redis_url=given("REDIS_URL"),
            redis_url_file=given("REDIS_URL_FILE"),
        )
