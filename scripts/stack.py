"""The local stack without Docker: a single-node Kafka (KRaft) and Redis with AOF.

Kafka's jars come from Maven Central through `scripts/kafka/pom.xml` into a cache folder
that outlives clones (`~/.cache/prc`); the storage is formatted once; Redis is Debian's
`redis-server`, installed with apt-get when missing. Every process is started in its own
session with its pid recorded under the state folder, and stopped by that pid. The servers
themselves are `scripts/servers.py` and `scripts/kafka_broker.py` (which the reliability
drills also run on private ports).

    python -m scripts.stack start|stop|status
    python -m scripts.stack run -- CMD...  # start what is missing, run CMD, stop what it started
    python -m scripts.stack env            # the client settings of the stack, as VAR=value lines

With `STACK_SECURE=1` the stack is secured as production clusters are: Kafka listens with
SASL_SSL (SCRAM-SHA-512 user `prc`), Redis with TLS only and an ACL user `prc` that may only
touch the keys and channels of REDIS_KEY_PREFIX; certificates (a private CA) and passwords
are made into the state folder, and the client settings point at them (`*_FILE` variants).
Its servers keep their state apart from the plaintext stack's.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from events.settings import Settings
from scripts.asyncapi_spec import schema_path as asyncapi_schema_path
from scripts.kafka_broker import SCRAM, KafkaBroker, KafkaSecurity, kafka_libs
from scripts.servers import (
    HOST,
    RedisSecurity,
    RedisServer,
    Server,
    StackError,
    apt_install,
    log,
    port_open,
    service_acl,
)

__all__ = ["StackError", "apt_install", "kafka_libs", "log"]

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("PRC_STATE_DIR", ROOT / ".state"))
KAFKA_PORT = int(os.environ.get("STACK_KAFKA_PORT", "9092"))
CONTROLLER_PORT = int(os.environ.get("STACK_KAFKA_CONTROLLER_PORT", str(KAFKA_PORT + 1)))
REDIS_PORT = int(os.environ.get("STACK_REDIS_PORT", "6379"))
PARTITIONS = int(os.environ.get("STACK_TOPIC_PARTITIONS", "6"))
TOPIC = os.environ.get("RECORD_EVENTS_TOPIC", "record-events")
KAFKA_HEAP = os.environ.get("STACK_KAFKA_HEAP", "768m")
SECURE = os.environ.get("STACK_SECURE", "").lower() in ("1", "true", "yes")
SERVICE_USER = "prc"


@dataclass(frozen=True)
class StackInfo:
    """Where the local services answer."""

    kafka_bootstrap_servers: str
    redis_url: str


def info() -> StackInfo:
    """The addresses of the local stack."""
    return StackInfo(f"{HOST}:{KAFKA_PORT}", f"redis://{HOST}:{REDIS_PORT}/0")


def _secure_home() -> Path:
    return STATE / "secure"


def kafka_security() -> KafkaSecurity:
    """The secured broker's TLS files and SCRAM users (made on first use)."""
    from scripts.tls import secret, tls_files

    home = _secure_home()
    users = {name: secret(home / "secrets", f"kafka-{name}") for name in ("broker", SERVICE_USER)}
    return KafkaSecurity(tls_files(home / "tls"), users)


def redis_security() -> RedisSecurity:
    """The secured Redis's TLS files, admin password and the service's ACL user."""
    from scripts.tls import secret, tls_files

    home = _secure_home()
    prefix = os.environ.get("REDIS_KEY_PREFIX") or Settings().redis_key_prefix
    user = (secret(home / "secrets", f"redis-{SERVICE_USER}"), service_acl(prefix))
    admin = secret(home / "secrets", "redis-default")
    return RedisSecurity(tls_files(home / "tls"), admin, {SERVICE_USER: user})


def redis_server() -> RedisServer:
    """The stack's Redis (state under `STATE/redis`, or `STATE/secure/redis` when secured)."""
    if SECURE:
        return RedisServer(_secure_home() / "redis", REDIS_PORT, security=redis_security())
    return RedisServer(STATE / "redis", REDIS_PORT)


def kafka_broker() -> KafkaBroker:
    """The stack's Kafka broker (state under `STATE/kafka`, or `STATE/secure/kafka`)."""
    if SECURE:
        return KafkaBroker(
            _secure_home() / "kafka",
            KAFKA_PORT,
            CONTROLLER_PORT,
            PARTITIONS,
            KAFKA_HEAP,
            security=kafka_security(),
        )
    return KafkaBroker(STATE / "kafka", KAFKA_PORT, CONTROLLER_PORT, PARTITIONS, KAFKA_HEAP)


def client_env(kafka: bool = True, redis: bool = True) -> dict[str, str]:
    """The environment that points the service's processes at this stack."""
    env: dict[str, str] = {}
    if kafka:
        env["KAFKA_BOOTSTRAP_SERVERS"] = info().kafka_bootstrap_servers
    if redis and not SECURE:
        env["REDIS_URL"] = info().redis_url
    if not SECURE:
        return env
    from scripts.tls import write_private

    home = _secure_home()
    ca = str(home / "tls" / "ca.pem")
    if kafka:
        kafka_security()  # the files exist from here on
        env.update(
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SASL_MECHANISM=SCRAM,
            KAFKA_SASL_USERNAME=SERVICE_USER,
            KAFKA_SASL_PASSWORD_FILE=str(home / "secrets" / f"kafka-{SERVICE_USER}"),
            KAFKA_SSL_CAFILE=ca,
        )
    if redis:
        url = redis_server().url_for(SERVICE_USER)
        env["REDIS_URL_FILE"] = str(write_private(home / "secrets" / "redis-url", url.encode()))
        env["REDIS_SSL_CAFILE"] = ca
    return env


def client_settings() -> Settings:
    """Settings of a client of this stack (for its own topic set-up)."""
    return Settings.from_env(client_env())


def _server(name: str) -> Server:
    return redis_server() if name == "redis" else kafka_broker()


def running_pid(name: str) -> int | None:
    """The pid of our running `name` service, or None."""
    return _server(name).pid()


def start_redis() -> bool:
    """Start Redis with AOF (everysec) unless ours runs; True when this call started it."""
    server = redis_server()
    if server.pid():
        return False
    if port_open(REDIS_PORT):
        raise StackError(
            f"port {REDIS_PORT} is taken by a Redis this stack did not start; set "
            "REDIS_URL to use it, or STACK_REDIS_PORT to run ours elsewhere"
        )
    return server.start()


def start_kafka() -> bool:
    """Start the KRaft broker unless ours runs; True when this call started it."""
    broker = kafka_broker()
    if broker.pid():
        return False
    for port in (KAFKA_PORT, CONTROLLER_PORT):
        if port_open(port):
            raise StackError(
                f"port {port} is taken by something this stack did not start; set "
                "KAFKA_BOOTSTRAP_SERVERS to use it, or STACK_KAFKA_PORT to run ours elsewhere"
            )
    return broker.start()


def ensure_topics() -> None:
    """Create the record-events topic and its DLQ (retention forever)."""
    from events.topics import ensure_topics as create

    target = client_settings() if SECURE else f"{HOST}:{KAFKA_PORT}"
    create(target, TOPIC, partitions=PARTITIONS)


# -- commands ----------------------------------------------------------------------------


def ensure_started() -> StackInfo:
    """Start whatever is not running yet; return the addresses."""
    start()
    return info()


def start() -> list[str]:
    """Start Redis and Kafka as needed (honouring REDIS_URL / KAFKA_BOOTSTRAP_SERVERS)."""
    started = []
    external_redis = os.environ.get("REDIS_URL") or os.environ.get("REDIS_URL_FILE")
    if not external_redis and start_redis():
        started.append("redis")
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        if start_kafka():
            started.append("kafka")
        ensure_topics()
    return started


def stop(names: list[str] | None = None) -> None:
    """Stop our services by pid (Kafka first, so it can flush while Redis still runs)."""
    # An empty list stops nothing: `run` passes what it started, often nothing at all.
    for name in ["kafka", "redis"] if names is None else names:
        _server(name).stop()


def status() -> dict[str, int | None]:
    """Which of our services run, by pid."""
    return {name: running_pid(name) for name in ("kafka", "redis")}


def _run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run cmd to its end; Ctrl-C reaches it directly, SIGTERM is passed on to it."""
    proc = subprocess.Popen(cmd, env=env)
    # The terminal's SIGINT goes to the whole process group, child included: wait for the
    # child to finish its own clean shutdown rather than dying half-way through ours.
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m scripts.stack", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "run", "env", "test-deps"])
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command in ("start", "env"):
        if args.command == "start":
            start()
        for name, value in client_env().items():
            print(f"{name}={value}")
    elif args.command == "stop":
        stop()
    elif args.command == "test-deps":
        # The browser test drives Debian's Chromium (no browser download is possible here).
        apt_install("chromium", "chromium")
        # The AsyncAPI document's test validates it against the official AsyncAPI schema.
        log(f"AsyncAPI 3.0.0 schema: {asyncapi_schema_path('3.0.0')}")
    elif args.command == "status":
        for name, pid in status().items():
            print(f"{name}: {'running, pid ' + str(pid) if pid else 'stopped'}")
    else:
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            parser.error("run needs a command after --")
        started = start()
        env = dict(os.environ)
        ours = client_env(
            kafka="KAFKA_BOOTSTRAP_SERVERS" not in env,
            redis=not ({"REDIS_URL", "REDIS_URL_FILE"} & set(env)),
        )
        env.update({name: value for name, value in ours.items() if name not in env})
        try:
            return _run_child(cmd, env)
        finally:
            stop([name for name in ("kafka", "redis") if name in started])
    return 0


if __name__ == "__main__":
    sys.exit(main())
