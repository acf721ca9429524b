"""Runtime configuration: the only module that reads the environment."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit, urlunsplit


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
MASK = "***"


def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***, for logs and messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. a bad port: say nothing that could hold a secret
        return "<unparsable URL>"
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def _read_secret_file(name: str, path: str) -> str:
    """The content of `<name>_FILE`'s file, one trailing newline dropped (as `echo` leaves)."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{name}_FILE: cannot read {path!r} ({reason})") from None
    value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise ConfigError(f"{name}_FILE: {path!r} is empty")
    return value


def _with_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with every `<NAME>_FILE` of FILE_VARIANTS replaced by `<NAME>` (the file's content)."""
    merged = dict(env)
    for name in FILE_VARIANTS:
        path = env.get(f"{name}_FILE")
        if not path:
            continue
        if env.get(name):
            raise ConfigError(f"set {name} or {name}_FILE, not both")
        merged[name] = _read_secret_file(name, path)
    return merged


def _readable_file(name: str, path: str | None) -> None:
    if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise ConfigError(f"{name}: no readable file at {path!r}")


@dataclass(frozen=True, repr=False)
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
    # `python -m projector rebuild` serves its own metrics here (it runs beside projectors).
    rebuild_metrics_port: int = 9103
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
    # Secured Kafka (README "Connecting to a secured cluster"); events/connections.py turns
    # these into every Kafka client's configuration.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None  # client certificate (chain), for mutual TLS
    kafka_ssl_keyfile: str | None = None
    kafka_ssl_key_password: str | None = None
    # CA bundle for a rediss:// REDIS_URL (default: the system's CAs).
    redis_ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        self._check_kafka_security()
        self._check_redis_security()

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value is not None:
                value = MASK
            elif f.name == "redis_url":
                value = mask_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

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
            _readable_file(name, tls[name])

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
            _readable_file("REDIS_SSL_CAFILE", self.redis_ssl_cafile)

    @property
    def dlq_topic(self) -> str:
        """The dead-letter topic: `<topic>.dlq`."""
        return f"{self.record_events_topic}.dlq"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `env` (default: the process environment)."""
        env = _with_secret_files(os.environ if env is None else env)
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
    if name in ("LOG_LEVEL", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM"):
        return raw.strip().upper()
    if name == "PROJECTOR_ASSIGNOR" and raw not in ASSIGNORS:
        raise ConfigError(f"PROJECTOR_ASSIGNOR must be one of {', '.join(ASSIGNORS)}, got {raw!r}")
    return raw
