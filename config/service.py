"""The service's settings: every process of it reads its environment here and nowhere else.

Each setting names the processes that read it (`read_by`), so each process's settings are
visible as such: `Settings.of("api")` is what the API runs with (secrets masked), and each
process logs its own at start. The grammar of values (integers, booleans, lists, `_FILE`
secrets) is config.environment's; the local stack's settings are config.stack's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from config.environment import (
    MASK,
    ConfigError,
    mask_url,
    parse_bool,
    parse_int,
    parse_list,
    readable_file,
    with_secret_files,
)

KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
REDIS_SCHEMES = ("redis", "rediss", "unix")
# Fields whose values are secrets: masked in repr, never logged; each may also be given as
# `<NAME>_FILE`, a path (the container-secrets convention). REDIS_URL holds its password.
SECRET_FIELDS = frozenset({"api_token", "kafka_sasl_password", "kafka_ssl_key_password"})
FILE_VARIANTS = (
    "API_TOKEN",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_KEY_PASSWORD",
    "REDIS_URL",
)

# The service's processes: the API (gunicorn and its workers), the projector, the rebuild
# (`python -m projector rebuild`) and the event producer (`python -m events.produce`).
API, PROJECTOR, REBUILD, PRODUCER = "api", "projector", "rebuild", "producer"
PROCESSES = (API, PROJECTOR, REBUILD, PRODUCER)
_KAFKA = (PROJECTOR, REBUILD, PRODUCER)
_REDIS = (API, PROJECTOR, REBUILD)


def _setting(default: Any = None, *, read_by: tuple[str, ...], factory: Any = None) -> Any:
    """A field read by the processes `read_by`."""
    meta = {"read_by": read_by}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, repr=False)
class Settings:
    """Every setting of the service, with the defaults SPEC.md names."""

    kafka_bootstrap_servers: str = _setting("127.0.0.1:9092", read_by=_KAFKA)
    redis_url: str = _setting("redis://127.0.0.1:6379/0", read_by=_REDIS)
    # REDIS_URL names any one node of a Redis Cluster; every component then uses the cluster.
    redis_cluster: bool = _setting(False, read_by=_REDIS)
    record_events_topic: str = _setting("record-events", read_by=PROCESSES)
    count_grace_seconds: int = _setting(300, read_by=(API, PROJECTOR))
    port: int = _setting(8000, read_by=(API,))
    # Address the API listens on: all interfaces for containers, loopback for tests.
    bind_host: str = _setting("0.0.0.0", read_by=(API,))
    api_token: str | None = _setting(None, read_by=(API,))
    cors_origins: tuple[str, ...] = _setting(factory=tuple, read_by=(API,))
    log_level: str = _setting("INFO", read_by=(API, PROJECTOR, REBUILD))
    # Prefix of every Redis key and pub/sub channel; lets tests and tenants share a Redis.
    redis_key_prefix: str = _setting("prc", read_by=_REDIS)
    dedup_window_seconds: int = _setting(7 * 86400, read_by=_REDIS)
    projector_group_id: str = _setting("prc-projector", read_by=(PROJECTOR,))
    # Static group membership: a restarted projector with the same id takes its
    # partitions back at once instead of waiting out the session timeout.
    projector_instance_id: str = _setting(
        factory=lambda: f"projector-{socket.gethostname()}", read_by=(PROJECTOR,)
    )
    projector_metrics_port: int = _setting(9102, read_by=(PROJECTOR,))
    # `python -m projector rebuild` serves its own metrics here (it runs beside projectors).
    rebuild_metrics_port: int = _setting(9103, read_by=(REBUILD,))
    # How the group spreads partitions over projectors (docs/design.md, "Scale-out"): one of
    # ASSIGNORS. Every member of a group must name the same one.
    projector_assignor: str = _setting("range", read_by=(PROJECTOR,))
    # Records per poll. Larger batches aggregate more and leave Redis idle less often between
    # them (docs/benchmarks.md: 5,000 -> 20,000 took catch-up from ~31,000 to ~37,000/s).
    projector_max_batch: int = _setting(20000, read_by=(PROJECTOR,))
    sse_max_streams: int = _setting(1000, read_by=(API,))
    sse_keepalive_seconds: int = _setting(15, read_by=(API,))
    web_concurrency: int = _setting(2, read_by=(API,))
    # Set by api/gunicorn_conf.py for its workers: prometheus_client's multiprocess mode.
    prometheus_multiproc_dir: str | None = _setting(None, read_by=(API,))
    # Secured Kafka (README "Connecting to a secured cluster"); events/connections.py turns
    # these into every Kafka client's configuration.
    kafka_security_protocol: str = _setting("PLAINTEXT", read_by=_KAFKA)
    kafka_sasl_mechanism: str | None = _setting(None, read_by=_KAFKA)
    kafka_sasl_username: str | None = _setting(None, read_by=_KAFKA)
    kafka_sasl_password: str | None = _setting(None, read_by=_KAFKA)
    kafka_ssl_cafile: str | None = _setting(None, read_by=_KAFKA)
    # The client certificate (chain), for mutual TLS.
    kafka_ssl_certfile: str | None = _setting(None, read_by=_KAFKA)
    kafka_ssl_keyfile: str | None = _setting(None, read_by=_KAFKA)
    kafka_ssl_key_password: str | None = _setting(None, read_by=_KAFKA)
    # CA bundle for a rediss:// REDIS_URL (default: the system's CAs).
    redis_ssl_cafile: str | None = _setting(None, read_by=_REDIS)

    def __post_init__(self) -> None:
        self._check_kafka_security()
        self._check_redis_security()

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={self._shown(f.name)!r}" for f in fields(self))
        return f"Settings({shown})"

    def _shown(self, name: str) -> object:
        """The value of field `name` as it may be logged: secrets masked."""
        value = getattr(self, name)
        if name in SECRET_FIELDS and value is not None:
            return MASK
        if name == "redis_url":
            return mask_url(value)
        return value

    def of(self, process: str) -> dict[str, object]:
        """The settings `process` reads, by environment variable, as they may be logged."""
        if process not in PROCESSES:
            raise ValueError(f"unknown process {process!r}; one of {', '.join(PROCESSES)}")
        return {
            f.name.upper(): self._shown(f.name)
            for f in fields(self)
            if process in f.metadata["read_by"]
        }

    @property
    def kafka_uses_tls(self) -> bool:
        """Whether Kafka connections are TLS (SSL or SASL_SSL)."""
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_uses_sasl(self) -> bool:
        """Whether Kafka connections authenticate with SASL."""
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def redis_uses_tls(self) -> bool:
        """Whether REDIS_URL is a rediss:// URL."""
        return self.redis_url.startswith("rediss://")

    def _check_kafka_security(self) -> None:
        protocol = self.kafka_security_protocol
        if protocol not in KAFKA_PROTOCOLS:
            raise ConfigError(
                f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_PROTOCOLS)}; "
                f"got {protocol!r}"
            )
        mechanism = self.kafka_sasl_mechanism
        if mechanism is not None and mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(
                f"KAFKA_SASL_MECHANISM must be one of {', '.join(KAFKA_SASL_MECHANISMS)}; "
                f"got {mechanism!r}"
            )
        sasl = (mechanism, self.kafka_sasl_username, self.kafka_sasl_password)
        if self.kafka_uses_sasl:
            if mechanism is None:
                raise ConfigError(
                    f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM "
                    f"({', '.join(KAFKA_SASL_MECHANISMS)})"
                )
            if not self.kafka_sasl_username or not self.kafka_sasl_password:
                raise ConfigError(
                    f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SASL_USERNAME and "
                    "KAFKA_SASL_PASSWORD (or their _FILE variants)"
                )
        elif any(value is not None for value in sasl):
            raise ConfigError(
                f"KAFKA_SASL_* is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL "
                "(use SASL_SSL or SASL_PLAINTEXT)"
            )
        tls = {
            "KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
            "KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
            "KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
            "KAFKA_SSL_KEY_PASSWORD": self.kafka_ssl_key_password,
        }
        given = [name for name, value in tls.items() if value is not None]
        if given and not self.kafka_uses_tls:
            raise ConfigError(
                f"{', '.join(given)} set but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                "TLS (use SSL or SASL_SSL)"
            )
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ConfigError("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE (the client certificate)")
        if self.kafka_ssl_key_password is not None and self.kafka_ssl_certfile is None:
            raise ConfigError("KAFKA_SSL_KEY_PASSWORD needs KAFKA_SSL_CERTFILE and its key")
        for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE"):
            readable_file(name, tls[name])

    def _check_redis_security(self) -> None:
        try:
            scheme = urlsplit(self.redis_url).scheme
        except ValueError:
            scheme = ""
        if scheme not in REDIS_SCHEMES:
            raise ConfigError(
                "REDIS_URL must be a redis://, rediss:// or unix:// URL; "
                f"got {mask_url(self.redis_url)!r}"
            )
        if self.redis_ssl_cafile is not None:
            if scheme != "rediss":
                raise ConfigError("REDIS_SSL_CAFILE is set but REDIS_URL is not a rediss:// URL")
            readable_file("REDIS_SSL_CAFILE", self.redis_ssl_cafile)

    @property
    def dlq_topic(self) -> str:
        """The dead-letter topic: `<topic>.dlq`."""
        return f"{self.record_events_topic}.dlq"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `env` (default: the process environment)."""
        env = with_secret_files(os.environ if env is None else env, FILE_VARIANTS)
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


def _parse(name: str, raw: str, kind: object) -> object:
    """One environment value converted to its field's type."""
    if kind in ("bool", bool):
        return parse_bool(name, raw)
    if kind in ("int", int):
        return parse_int(name, raw, _MINIMUM.get(name, 0))
    if kind in ("tuple[str, ...]",):
        return parse_list(raw)
    if name in ("LOG_LEVEL", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM"):
        return raw.strip().upper()
    if name == "PROJECTOR_ASSIGNOR" and raw not in ASSIGNORS:
        raise ConfigError(f"PROJECTOR_ASSIGNOR must be one of {', '.join(ASSIGNORS)}, got {raw!r}")
    return raw
