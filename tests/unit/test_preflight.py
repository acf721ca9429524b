"""How the start-up checks name a refusal (pure parts; the real servers are in integration)."""

from __future__ import annotations

import ssl

import pytest
import redis

from config import Settings
from events.preflight import kafka_refusal, redis_rejection

SASL_SSL = Settings.from_env(
    {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD": "pw",
    }
)
SSL = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL"})
PLAINTEXT = Settings.from_env({})


@pytest.mark.parametrize(
    ("settings", "messages", "expected"),
    [
        (SASL_SSL, ["SaslHandshake failed: IllegalSaslStateError"], "wrong protocol"),
        (SASL_SSL, ["Connection lost: [Error 33] UnsupportedSaslMechanismError"], "not enable"),
        (SASL_SSL, ["Connection lost: KafkaConnectionError: socket disconnected"], "password"),
        (SSL, ["Abort (KafkaConnectionError: socket disconnected)"], "requires SASL"),
        (PLAINTEXT, ["KafkaConnectionError: socket disconnected"], "use SASL_PLAINTEXT"),
        (SSL, ["error: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]"], "client certificate"),
        (SASL_SSL, ["Bootstrap bootstrap-0 not ready; waiting 0.5 secs"], None),
        (PLAINTEXT, [], None),
    ],
)
def test_kafka_refusals_are_named(
    settings: Settings, messages: list[str], expected: str | None
) -> None:
    reason = kafka_refusal(settings, messages)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def _wrapped(cause: BaseException) -> redis.exceptions.ConnectionError:
    try:
        try:
            raise cause
        except OSError as exc:
            raise redis.exceptions.ConnectionError("Error 1 connecting to h:6380.") from exc
    except redis.exceptions.ConnectionError as error:
        return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (redis.exceptions.AuthenticationError("invalid username-password pair"), "password"),
        (redis.exceptions.NoPermissionError("no permissions to access a key"), "ACL"),
        (_wrapped(ssl.SSLCertVerificationError(1, "certificate verify failed")), "untrusted"),
        (_wrapped(ssl.SSLError(1, "wrong version number")), "TLS handshake failed"),
        (redis.exceptions.ConnectionError("Connection refused"), None),
        (redis.exceptions.TimeoutError("Timeout connecting"), None),
    ],
)
def test_redis_refusals_are_told_from_outages(error: Exception, expected: str | None) -> None:
    reason = redis_rejection(error)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason
