"""Runtime configuration: the only module that reads the environment."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields


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
    # REDIS_URL names any one node of a Redis Cluster; every component then uses the cluster.
    redis_cluster: bool = False
    record_events_topic: str = "record-events"
    count_grace_seconds: int = 300
    port: int = 8000
    # Address the API listens on: all interfaces for containers, loopback for tests.
    bind_host: str = "0.0.0.0"
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
    # How the group spreads partitions over projectors (docs/design.md, "Scale-out"): one of
    # ASSIGNORS. Every member of a group must name the same one.
    projector_assignor: str = "range"
    # Records per poll. Larger batches aggregate more and leave Redis idle less often between
    # them (docs/benchmarks.md: 5,000 -> 20,000 took catch-up from ~31,000 to ~37,000/s).
    projector_max_batch: int = 20000
    sse_max_streams: int = 1000
    sse_keepalive_seconds: int = 15
    web_concurrency: int = 2
    # Set by api/gunicorn_conf.py for its workers: prometheus_client's multiprocess mode.
    prometheus_multiproc_dir: str | None = None

    @property
    def dlq_topic(self) -> str:
        """The dead-letter topic: `<topic>.dlq`."""
        return f"{self.record_events_topic}.dlq"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name.upper(), raw, f.type)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as environment variables, for starting a child process."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, tuple):
                env[f.name.upper()] = ",".join(value)
            elif isinstance(value, bool):
                env[f.name.upper()] = "true" if value else "false"
            else:
                env[f.name.upper()] = str(value)
        return env


ASSIGNORS = ("range", "roundrobin", "cooperative-sticky")
_MINIMUM = {
    "PORT": 1,
    "DEDUP_WINDOW_SECONDS": 1,
    "PROJECTOR_MAX_BATCH": 1,
    "SSE_MAX_STREAMS": 1,
    "SSE_KEEPALIVE_SECONDS": 1,
    "WEB_CONCURRENCY": 1,
}


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _parse(name: str, raw: str, kind: object) -> object:
    """One environment value converted to its field's type."""
    if kind in ("bool", bool):
        if raw.lower() in _TRUE + _FALSE:
            return raw.lower() in _TRUE
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    if kind in ("int", int):
        return _int({name: raw}, name, 0, _MINIMUM.get(name, 0))
    if kind in ("tuple[str, ...]",):
        return _list(raw)
    if name == "LOG_LEVEL":
        return raw.upper()
    if name == "PROJECTOR_ASSIGNOR" and raw not in ASSIGNORS:
        raise ConfigError(f"PROJECTOR_ASSIGNOR must be one of {', '.join(ASSIGNORS)}, got {raw!r}")
    return raw
