"""The secured local stack (`STACK_SECURE=1`): its certificates, passwords and client settings.

Kafka listens with SASL_SSL (SCRAM-SHA-512 user `prc`), Redis with TLS only and an ACL user
`prc` that may only touch the keys and channels of REDIS_KEY_PREFIX. The certificates (a
private CA) and passwords are made on first use under `<home>` (the state folder's `secure/`),
and the client settings point at them (`*_FILE` variants), as a container would get them.
"""

from __future__ import annotations

from pathlib import Path

from scripts.kafka_broker import SCRAM, KafkaSecurity
from scripts.redis_server import RedisSecurity, RedisServer, service_acl
from scripts.tls import secret, tls_files, write_private

SERVICE_USER = "prc"


def kafka_security(home: Path) -> KafkaSecurity:
    """The secured broker's TLS files and SCRAM users (made on first use)."""
    users = {name: secret(home / "secrets", f"kafka-{name}") for name in ("broker", SERVICE_USER)}
    return KafkaSecurity(tls_files(home / "tls"), users)


def redis_security(home: Path, prefix: str) -> RedisSecurity:
    """The secured Redis's TLS files, admin password and the service's ACL user, whose keys
    and channels are those under `prefix`."""
    user = (secret(home / "secrets", f"redis-{SERVICE_USER}"), service_acl(prefix))
    admin = secret(home / "secrets", "redis-default")
    return RedisSecurity(tls_files(home / "tls"), admin, {SERVICE_USER: user})


def client_env(home: Path, kafka: bool, redis: RedisServer | None) -> dict[str, str]:
    """The settings that connect the service, as user `prc`, to the secured Kafka (if `kafka`)
    and to the secured Redis `redis` (if any): secrets as `*_FILE` paths."""
    env: dict[str, str] = {}
    ca = str(home / "tls" / "ca.pem")
    if kafka:
        kafka_security(home)  # the files exist from here on
        env.update(
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SASL_MECHANISM=SCRAM,
            KAFKA_SASL_USERNAME=SERVICE_USER,
            KAFKA_SASL_PASSWORD_FILE=str(home / "secrets" / f"kafka-{SERVICE_USER}"),
            KAFKA_SSL_CAFILE=ca,
        )
    if redis is not None:
        url = redis.url_for(SERVICE_USER)
        env["REDIS_URL_FILE"] = str(write_private(home / "secrets" / "redis-url", url.encode()))
        env["REDIS_SSL_CAFILE"] = ca
    return env
