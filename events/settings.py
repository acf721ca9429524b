"""Runtime configuration: the only module that reads the environment."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration value is missing or malformed; raised at start-up."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, with the defaults SPEC.md names."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    record_events_topic: str = "record-events"
    count_grace_seconds: int = 300
    port: int = 8000
    api_token: str | None = None
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    # Prefix of every Redis key and pub/sub channel; lets tests and tenants share a Redis.
    redis_key_prefix: str = "prc"
    dedup_window_seconds: int = 7 * 86400
    projector_group_id: str = "prc-projector"
    # Static group membership: a restarted projector with the same id takes its
    # partitions back at once instead of waiting out the session timeout.
    projector_instance_id: str = field(default_factory=lambda: f"projector-{socket.gethostname()}")
    projector_metrics_port: int = 9102
    projector_max_batch: int = 5000
    sse_max_streams: int = 1000
    sse_keepalive_seconds: int = 15
    web_concurrency: int = 2

    @property
    def dlq_topic(self) -> str:
        """The dead-letter topic: `<topic>.dlq`."""
        return f"{self.record_events_topic}.dlq"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        d = cls()
        return cls(
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or d.kafka_bootstrap_servers,
            redis_url=env.get("REDIS_URL") or d.redis_url,
            record_events_topic=env.get("RECORD_EVENTS_TOPIC") or d.record_events_topic,
            count_grace_seconds=_int(env, "COUNT_GRACE_SECONDS", d.count_grace_seconds),
            port=_int(env, "PORT", d.port, minimum=1),
            api_token=env.get("API_TOKEN") or None,
            cors_origins=_list(env.get("CORS_ORIGINS")),
            log_level=(env.get("LOG_LEVEL") or d.log_level).upper(),
            redis_key_prefix=env.get("REDIS_KEY_PREFIX") or d.redis_key_prefix,
            dedup_window_seconds=_int(
                env, "DEDUP_WINDOW_SECONDS", d.dedup_window_seconds, minimum=1
            ),
            projector_group_id=env.get("PROJECTOR_GROUP_ID") or d.projector_group_id,
            projector_instance_id=env.get("PROJECTOR_INSTANCE_ID") or d.projector_instance_id,
            projector_metrics_port=_int(env, "PROJECTOR_METRICS_PORT", d.projector_metrics_port),
            projector_max_batch=_int(env, "PROJECTOR_MAX_BATCH", d.projector_max_batch, 1),
            sse_max_streams=_int(env, "SSE_MAX_STREAMS", d.sse_max_streams, minimum=1),
            sse_keepalive_seconds=_int(
                env, "SSE_KEEPALIVE_SECONDS", d.sse_keepalive_seconds, minimum=1
            ),
            web_concurrency=_int(env, "WEB_CONCURRENCY", d.web_concurrency, minimum=1),
        )
