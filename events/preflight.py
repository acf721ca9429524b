"""Bounded start-up checks of the Kafka and Redis connections: refuse to run misconfigured.

kafka-python and redis-py both retry a refused connection as if the server were away, so a
wrong password, an untrusted certificate or a wrong protocol would look like an outage that
never ends. Each process checks its connections once at start-up, within seconds:

- `Rejected` (a ConfigError): the server is there and refuses this configuration. The
  process logs one line saying which, and exits non-zero.
- `KafkaUnavailable` / `RedisUnavailable`: nothing answers (yet). A long-running process
  goes on and retries as it always did; a one-shot command fails.

Messages name hosts, users, mechanisms and file paths, never a password.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import redis

from config import ConfigError, Settings
from events.connections import (
    KafkaTarget,
    bootstrap_servers,
    describe_kafka,
    describe_redis,
    kafka_config,
)
from events.probes import (
    handshake,
    speaks_plain_kafka,
    speaks_plain_redis,
    speaks_tls,
    ssl_cause,
    ssl_reason,
    tls_context,
)
from events.redis_client import connect
from events.topics import KafkaUnavailable, check_reachable, host_port

KAFKA_CHECK_SECONDS = 5.0  # a healthy broker answers in well under a second
REACH_SECONDS = 3.0

log = logging.getLogger(__name__)


class Rejected(ConfigError):
    """A server refused this configuration: credentials, certificate or protocol."""


class RedisUnavailable(redis.exceptions.ConnectionError):
    """Redis did not answer (not a refusal: it may come back)."""


# -- Kafka ---------------------------------------------------------------------------------


def _first_address(target: KafkaTarget) -> tuple[str, int]:
    return host_port(bootstrap_servers(target).split(",")[0])


def _check_kafka_tls(settings: Settings, address: tuple[str, int]) -> None:
    where = f"Kafka at {address[0]}:{address[1]}"
    protocol = settings.kafka_security_protocol
    if not settings.kafka_uses_tls:
        if not speaks_plain_kafka(address) and speaks_tls(address):
            raise Rejected(
                f"{where}: wrong protocol: it speaks TLS but KAFKA_SECURITY_PROTOCOL={protocol} "
                "(use SSL or SASL_SSL)"
            )
        return
    try:
        context = tls_context(
            settings.kafka_ssl_cafile,
            settings.kafka_ssl_certfile,
            settings.kafka_ssl_keyfile,
            settings.kafka_ssl_key_password,
        )
    except (OSError, ssl.SSLError) as exc:
        raise Rejected(
            f"cannot load the Kafka TLS files (KAFKA_SSL_CAFILE / KAFKA_SSL_CERTFILE / "
            f"KAFKA_SSL_KEYFILE): {ssl_reason(exc)}"
        ) from None
    try:
        handshake(address, context, listen=0.0 if settings.kafka_ssl_certfile else 0.3)
    except ssl.SSLCertVerificationError as exc:
        raise Rejected(
            f"{where}: untrusted certificate ({ssl_reason(exc)}); KAFKA_SSL_CAFILE="
            f"{settings.kafka_ssl_cafile or '<system CAs>'} does not vouch for it"
        ) from None
    except OSError as exc:  # ssl.SSLError is one
        if speaks_plain_kafka(address):
            raise Rejected(
                f"{where}: wrong protocol: it speaks plaintext Kafka but KAFKA_SECURITY_PROTOCOL="
                f"{protocol} (use PLAINTEXT or SASL_PLAINTEXT)"
            ) from None
        if not isinstance(exc, ssl.SSLError):  # refused, reset, timed out: not a verdict
            raise KafkaUnavailable(f"{where}: no TLS handshake ({ssl_reason(exc)})") from None
        reason = ssl_reason(exc)
        if "CERTIFICATE_REQUIRED" in str(reason) or "BAD_CERTIFICATE" in str(reason):
            raise Rejected(
                f"{where}: the broker rejected our client certificate ({reason}): "
                "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE must hold one signed by a CA it trusts"
                if settings.kafka_ssl_certfile
                else f"{where}: the broker requires a client certificate (KAFKA_SSL_CERTFILE "
                "and KAFKA_SSL_KEYFILE): mutual TLS"
            ) from None
        raise Rejected(f"{where}: TLS handshake failed ({reason})") from None


class _Captured(logging.Handler):
    """Keeps kafka-python's warnings during the check (they say why a bootstrap failed)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _kafka_logs_captured() -> Iterator[_Captured]:
    """kafka-python's own lines go to the check, not the log: the check logs one line."""
    logger = logging.getLogger("kafka")
    saved = logger.handlers[:], logger.propagate, logger.level
    handler = _Captured()
    logger.handlers, logger.propagate = [handler], False
    if logger.level in (logging.NOTSET,) or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.handlers, logger.propagate, logger.level = saved


def kafka_refusal(settings: Settings, messages: list[str]) -> str | None:
    """Why the Kafka handshake failed, when kafka-python's messages show a refusal."""
    text = " ".join(messages)
    protocol, mechanism = settings.kafka_security_protocol, settings.kafka_sasl_mechanism
    if "IllegalSaslState" in text:
        return (
            f"wrong protocol: the listener does not use SASL but KAFKA_SECURITY_PROTOCOL="
            f"{protocol} (use {'SSL' if settings.kafka_uses_tls else 'PLAINTEXT'})"
        )
    if "UnsupportedSaslMechanism" in text:
        return f"the broker does not enable KAFKA_SASL_MECHANISM={mechanism}"
    if "CERTIFICATE_REQUIRED" in text.upper().replace(" ", "_"):
        return "the broker requires a client certificate (KAFKA_SSL_CERTFILE, KAFKA_SSL_KEYFILE)"
    if "disconnected" not in text and "ConnectionError" not in text:
        return None
    if settings.kafka_uses_sasl:
        # A failed SASL authentication: the broker sends its error and closes at once, and
        # kafka-python reports only the close.
        return (
            "wrong password or user: the broker closed the connection during SASL "
            f"authentication of {settings.kafka_sasl_username!r} ({mechanism})"
        )
    return (
        "wrong protocol: the broker closed the connection before answering; its listener "
        f"requires SASL but KAFKA_SECURITY_PROTOCOL={protocol} (use SASL_"
        f"{'SSL' if settings.kafka_uses_tls else 'PLAINTEXT'})"
    )


def check_kafka(target: KafkaTarget, timeout_s: float = KAFKA_CHECK_SECONDS) -> None:
    """Connect and authenticate once; raise Rejected or KafkaUnavailable, within ~timeout_s."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError, SaslAuthenticationFailedError

    servers = bootstrap_servers(target)
    check_reachable(servers, REACH_SECONDS)
    if isinstance(target, Settings):
        _check_kafka_tls(target, _first_address(target))
    started = time.monotonic()
    with _kafka_logs_captured() as captured:
        try:
            admin = KafkaAdminClient(
                **kafka_config(target),
                client_id="prc-preflight",
                bootstrap_timeout_ms=int(timeout_s * 1000),
                request_timeout_ms=int(timeout_s * 1000),
                reconnect_backoff_max_ms=1000,
            )
        except SaslAuthenticationFailedError as exc:
            raise Rejected(
                f"Kafka at {describe_kafka(target)}: wrong password or user: the SASL "
                f"credentials were rejected ({exc})"
            ) from None
        except KafkaError as exc:
            reason = (
                kafka_refusal(target, captured.messages) if isinstance(target, Settings) else None
            )
            if reason:
                raise Rejected(f"Kafka at {describe_kafka(target)}: {reason}") from None
            waited = time.monotonic() - started
            raise KafkaUnavailable(
                f"Kafka at {servers} did not complete a handshake in {waited:.0f}s: {exc}"
            ) from None
        admin.close()


# -- Redis ---------------------------------------------------------------------------------


def redis_rejection(exc: BaseException) -> str | None:
    """Why Redis refuses us, when `exc` is a refusal (credentials, ACL, TLS); else None."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return f"wrong password or user: the credentials were rejected ({exc})"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return f"the ACL denies the service's commands on its keys and channels ({exc})"
    cause = ssl_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f"untrusted certificate ({ssl_reason(cause)}); REDIS_SSL_CAFILE does not vouch for it"
        )
    if cause is not None:
        return f"TLS handshake failed ({ssl_reason(cause)})"
    return None


def _redis_address(settings: Settings) -> tuple[str, int] | None:
    parts = urlsplit(settings.redis_url)
    if parts.scheme == "unix" or not parts.hostname:
        return None
    return parts.hostname, parts.port or 6379


def check_redis(settings: Settings, client: redis.Redis | None = None) -> None:
    """PING and touch a key of our prefix; raise Rejected or RedisUnavailable."""
    own = client is None
    if client is None:
        client = connect(settings, timeout=5)
    where = f"Redis at {describe_redis(settings)}"
    try:
        client.ping()
        client.exists(f"{settings.redis_key_prefix}:preflight")
    except redis.exceptions.RedisError as exc:
        reason = redis_rejection(exc)
        address = _redis_address(settings)
        if reason is None and address is not None:
            if settings.redis_uses_tls and speaks_plain_redis(address):
                reason = "wrong protocol: it speaks plaintext but REDIS_URL is rediss://"
            elif not settings.redis_uses_tls and speaks_tls(address):
                reason = "wrong protocol: it speaks TLS but REDIS_URL is redis:// (use rediss://)"
        if reason is not None:
            raise Rejected(f"{where} (as {_redis_user(settings)}): {reason}") from None
        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            raise RedisUnavailable(f"{where} does not answer: {exc}") from None
        raise
    finally:
        if own:
            client.close()


def _redis_user(settings: Settings) -> str:
    user = urlsplit(settings.redis_url).username
    return f"user {user!r}" if user else "the default user"


# -- entry points --------------------------------------------------------------------------


def check_services(settings: Settings, *, with_kafka: bool, with_redis: bool) -> None:
    """Check the connections a process needs; unavailable servers are logged, not fatal."""
    if with_kafka:
        try:
            check_kafka(settings)
        except KafkaUnavailable as exc:
            log.warning("kafka not reachable yet; will keep trying", extra={"error": str(exc)})
    if with_redis:
        try:
            check_redis(settings)
        except RedisUnavailable as exc:
            log.warning("redis not reachable yet; will keep trying", extra={"error": str(exc)})
    log.info(
        "connections checked",
        extra={
            "kafka": describe_kafka(settings) if with_kafka else None,
            "redis": describe_redis(settings) if with_redis else None,
        },
    )
