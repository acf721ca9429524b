"""Client configuration from Settings: what every Kafka and Redis client of the service gets."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from config import Settings
from events.connections import describe_kafka, describe_redis, kafka_config
from events.redis_client import connect

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@pytest.fixture
def pem(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("pem")
    return str(path)


def secured(protocol: str, mechanism: str, pem: str, **more: str) -> Settings:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "k1:9093,k2:9093", "KAFKA_SECURITY_PROTOCOL": protocol}
    if protocol.startswith("SASL_"):
        env |= {
            "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": "pw",
        }
    if protocol.endswith("SSL"):
        env |= {"KAFKA_SSL_CAFILE": pem}
    return Settings.from_env(env | more)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_config_for_every_protocol_and_mechanism(
    protocol: str, mechanism: str, pem: str
) -> None:
    config = kafka_config(secured(protocol, mechanism, pem))
    expected: dict[str, object] = {
        "bootstrap_servers": "k1:9093,k2:9093",
        "security_protocol": protocol,
    }
    if protocol.endswith("SSL"):
        expected |= {
            "ssl_cafile": pem,
            "ssl_certfile": None,
            "ssl_keyfile": None,
            "ssl_password": None,
        }
    if protocol.startswith("SASL_"):
        expected |= {
            "sasl_mechanism": mechanism,
            "sasl_plain_username": "svc",
            "sasl_plain_password": "pw",
        }
    assert config == expected


def test_kafka_config_carries_the_client_certificate(pem: str) -> None:
    config = kafka_config(
        secured(
            "SSL",
            "PLAIN",
            pem,
            KAFKA_SSL_CERTFILE=pem,
            KAFKA_SSL_KEYFILE=pem,
            KAFKA_SSL_KEY_PASSWORD="kp",
        )
    )
    assert (config["ssl_certfile"], config["ssl_keyfile"], config["ssl_password"]) == (
        pem,
        pem,
        "kp",
    )


def test_every_kafka_client_accepts_the_config(pem: str) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    config = kafka_config(secured("SASL_SSL", "SCRAM-SHA-512", pem))
    for client in (KafkaConsumer, KafkaProducer, KafkaAdminClient):
        known = set(client.DEFAULT_CONFIG)
        assert set(config) <= known, (client.__name__, set(config) - known)


def test_a_bootstrap_string_is_a_plaintext_cluster() -> None:
    assert kafka_config("h:9092") == {"bootstrap_servers": "h:9092"}
    assert describe_kafka("h:9092") == "h:9092 (PLAINTEXT)"


def test_descriptions_name_the_user_but_no_secret(pem: str) -> None:
    settings = secured(
        "SASL_SSL", "SCRAM-SHA-512", pem, REDIS_URL="rediss://svc:pw-SECRET@r:6380/0"
    )
    assert describe_kafka(settings) == "k1:9093,k2:9093 (SASL_SSL, SCRAM-SHA-512 as 'svc')"
    assert describe_redis(settings) == "rediss://svc:***@r:6380/0"


def test_redis_clients_use_tls_the_acl_user_and_the_ca(pem: str) -> None:
    settings = Settings.from_env({"REDIS_URL": "rediss://svc:pw@r:6380/3", "REDIS_SSL_CAFILE": pem})
    for client in (connect(settings, timeout=2), connect(settings, max_connections=4)):
        kwargs = client.connection_pool.connection_kwargs
        assert client.connection_pool.connection_class is redis.SSLConnection
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("svc", "pw", 3)
        assert kwargs["ssl_ca_certs"] == pem


def test_a_plain_redis_url_gets_no_tls_options() -> None:
    client = connect(Settings.from_env({"REDIS_URL": "redis://r:6379/0"}))
    assert client.connection_pool.connection_class is redis.Connection
    assert "ssl_ca_certs" not in client.connection_pool.connection_kwargs
