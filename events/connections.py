"""Kafka client configuration from Settings: the one place every Kafka client is built from.

`kafka_config` gives the keyword arguments every kafka-python client of the service takes
(consumer, producers, admin); Redis clients come from `events.redis_client.connect`. Secrets
go from Settings into these and nowhere else: `describe_*` say where a connection goes, for
logs, without them.
"""

from __future__ import annotations

from typing import Any

from config import Settings, mask_url

# A plain "host:port,..." string stands for a PLAINTEXT cluster (tests and tools that address a
# bare broker); Settings carry the security settings too.
KafkaTarget = Settings | str


def kafka_config(target: KafkaTarget) -> dict[str, Any]:
    """Connection keyword arguments for KafkaConsumer, KafkaProducer and KafkaAdminClient."""
    if isinstance(target, str):
        return {"bootstrap_servers": target}
    settings = target
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_uses_tls:
        # kafka-python verifies the broker's certificate and host name (ssl_check_hostname)
        # against the CA file, else the system's CAs.
        config.update(
            ssl_cafile=settings.kafka_ssl_cafile,
            ssl_certfile=settings.kafka_ssl_certfile,
            ssl_keyfile=settings.kafka_ssl_keyfile,
            ssl_password=settings.kafka_ssl_key_password,
        )
    if settings.kafka_uses_sasl:
        config.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return config


def bootstrap_servers(target: KafkaTarget) -> str:
    """The bootstrap servers of `target` (for messages: no secret in it)."""
    return target if isinstance(target, str) else target.kafka_bootstrap_servers


def describe_kafka(target: KafkaTarget) -> str:
    """Where and how Kafka is reached, without secrets: for log lines."""
    if isinstance(target, str):
        return f"{target} (PLAINTEXT)"
    how = target.kafka_security_protocol
    if target.kafka_uses_sasl:
        how += f", {target.kafka_sasl_mechanism} as {target.kafka_sasl_username!r}"
    if target.kafka_ssl_certfile:
        how += ", client certificate"
    return f"{target.kafka_bootstrap_servers} ({how})"


def describe_redis(settings: Settings) -> str:
    """REDIS_URL with its password masked: for log lines."""
    return mask_url(settings.redis_url)
