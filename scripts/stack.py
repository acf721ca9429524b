"""The local stack without Docker: a single-node Kafka (KRaft) and Redis with AOF.

Kafka's jars come from Maven Central through `scripts/kafka/pom.xml` into a cache folder
that outlives clones (`~/.cache/prc`); the storage is formatted once; Redis is Debian's
`redis-server`, installed with apt-get when missing. Every process is started in its own
session with its pid recorded under the state folder, and stopped by that pid. The servers
are `scripts/redis_server.py`, `redis_cluster.py` and `kafka_broker.py` (which the drills
also run on private ports); the settings, `config/stack.py`'s.

`STACK_REDIS_CLUSTER_NODES=3` (or more) runs a Redis Cluster of that many masters on
`STACK_REDIS_CLUSTER_PORT`.. instead of the single Redis; `run` then hands its child
`REDIS_URL` (the seed node) and `REDIS_CLUSTER=true`.

    python -m scripts.stack start|stop|status
    python -m scripts.stack run -- CMD...  # start what is missing, run CMD, stop what it started
    python -m scripts.stack env            # the client settings of the stack, as VAR=value lines

With `STACK_SECURE=1` the stack is secured as production clusters are: Kafka listens with
SASL_SSL (SCRAM-SHA-512 user `prc`), Redis with TLS only and an ACL user `prc` that may only
touch the keys and channels of REDIS_KEY_PREFIX; certificates (a private CA) and passwords
are made into the state folder, and the client settings point at them (`*_FILE` variants;
`scripts/stack_secure.py`). Its servers keep their state apart from the plaintext stack's.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from config import Settings, StackSettings
from scripts import stack_secure
from scripts.apt import apt_install
from scripts.kafka_broker import KafkaBroker, kafka_libs
from scripts.ports import HOST, held_by, port_open
from scripts.processes import StackError, log, run_child
from scripts.redis_cluster import MIN_MASTERS, RedisClusterServer
from scripts.redis_server import RedisServer

__all__ = ["StackError", "apt_install", "kafka_libs", "log", "run_child"]

SETTINGS = StackSettings.from_env()
STATE = SETTINGS.state_dir
KAFKA_PORT = SETTINGS.kafka_port
CONTROLLER_PORT = SETTINGS.kafka_controller_port
REDIS_PORT = SETTINGS.redis_port
# 0: the single Redis; N >= 3: a Redis Cluster of N masters on ports CLUSTER_PORT.. (and each
# node's cluster bus 10000 above, or below when that is past 65535).
CLUSTER_NODES = SETTINGS.redis_cluster_nodes
CLUSTER_PORT = SETTINGS.redis_cluster_port
CLUSTER_STATE = STATE / "redis-cluster"
PARTITIONS = SETTINGS.topic_partitions
TOPIC = SETTINGS.record_events_topic
KAFKA_HEAP = SETTINGS.kafka_heap
SECURE = SETTINGS.secure


@dataclass(frozen=True)
class StackInfo:
    """Where the local services answer."""

    kafka_bootstrap_servers: str
    redis_url: str
    redis_cluster: bool = False


def info(cluster_nodes: int = CLUSTER_NODES) -> StackInfo:
    """The addresses of the local stack (with `cluster_nodes`, its Redis Cluster's seed)."""
    kafka = f"{HOST}:{KAFKA_PORT}"
    if cluster_nodes:
        return StackInfo(kafka, redis_cluster(cluster_nodes).url, redis_cluster=True)
    return StackInfo(kafka, f"redis://{HOST}:{REDIS_PORT}/0")


def _secure_home() -> Path:
    return STATE / "secure"


def redis_server() -> RedisServer:
    """The stack's Redis (state under `STATE/redis`, or `STATE/secure/redis` when secured)."""
    if SECURE:
        security = stack_secure.redis_security(_secure_home(), SETTINGS.redis_key_prefix)
        return RedisServer(_secure_home() / "redis", REDIS_PORT, security=security)
    return RedisServer(STATE / "redis", REDIS_PORT)


def cluster_ports_on_disk() -> list[int]:
    """The ports of the cluster nodes that have a folder under CLUSTER_STATE."""
    return sorted(int(d.name) for d in CLUSTER_STATE.glob("*") if d.name.isdigit())


def redis_cluster(nodes: int | None = None) -> RedisClusterServer:
    """The stack's Redis Cluster of `nodes` masters (state under `STATE/redis-cluster`); by
    default the one on disk, else `STACK_REDIS_CLUSTER_NODES` of them."""
    made = cluster_ports_on_disk()
    if nodes is None and made:
        return RedisClusterServer(CLUSTER_STATE, made)
    count = CLUSTER_NODES if nodes is None else nodes
    if count < MIN_MASTERS:
        raise StackError(
            f"STACK_REDIS_CLUSTER_NODES must be 0 (a single Redis) or >= {MIN_MASTERS}, got {count}"
        )
    if SECURE:
        raise StackError(
            "the local Redis Cluster is plaintext only: STACK_SECURE=1 runs a single Redis"
        )
    return RedisClusterServer(CLUSTER_STATE, range(CLUSTER_PORT, CLUSTER_PORT + count))


def kafka_broker() -> KafkaBroker:
    """The stack's Kafka broker (state under `STATE/kafka`, or `STATE/secure/kafka`)."""
    if SECURE:
        return KafkaBroker(
            _secure_home() / "kafka",
            KAFKA_PORT,
            CONTROLLER_PORT,
            PARTITIONS,
            KAFKA_HEAP,
            security=stack_secure.kafka_security(_secure_home()),
        )
    return KafkaBroker(STATE / "kafka", KAFKA_PORT, CONTROLLER_PORT, PARTITIONS, KAFKA_HEAP)


def client_env(
    kafka: bool = True, redis: bool = True, cluster_nodes: int = CLUSTER_NODES
) -> dict[str, str]:
    """The environment that points the service's processes at this stack (its Redis
    Cluster of `cluster_nodes` masters, if any)."""
    env: dict[str, str] = {}
    if kafka:
        env["KAFKA_BOOTSTRAP_SERVERS"] = info().kafka_bootstrap_servers
    if redis and not SECURE:
        ours = info(cluster_nodes)
        env["REDIS_URL"] = ours.redis_url
        env["REDIS_CLUSTER"] = "true" if ours.redis_cluster else "false"
    if SECURE:
        secured_redis = redis_server() if redis else None
        env.update(stack_secure.client_env(_secure_home(), kafka, secured_redis))
    return env


def client_settings() -> Settings:
    """Settings of a client of this stack (for its own topic set-up)."""
    return Settings.from_env(client_env())


def child_env(cluster_nodes: int = CLUSTER_NODES) -> dict[str, str]:
    """The environment of `run`'s child: ours, with this stack's servers for those it does
    not name; when the Redis is the stack's, REDIS_CLUSTER says which kind it is."""
    env = dict(os.environ)
    ours = client_env(
        kafka="KAFKA_BOOTSTRAP_SERVERS" not in env,
        redis=not ({"REDIS_URL", "REDIS_URL_FILE"} & set(env)),
        cluster_nodes=cluster_nodes,
    )
    env.update({k: v for k, v in ours.items() if k not in env or k == "REDIS_CLUSTER"})
    return env


SERVICES = ("kafka", "redis", "redis-cluster")


def running_pid(name: str) -> int | None:
    """The pid of our running `name` service (a cluster's first running node), or None."""
    if name == "redis-cluster":
        pids = redis_cluster().pids().values() if cluster_ports_on_disk() else []
        return next((pid for pid in pids if pid), None)
    return (redis_server() if name == "redis" else kafka_broker()).pid()


def start_redis() -> bool:
    """Start Redis with AOF (everysec) unless ours runs; True when this call started it."""
    server = redis_server()
    if server.pid():
        return False
    if port_open(REDIS_PORT):
        raise StackError(
            f"port {REDIS_PORT} is taken by a Redis this stack did not start"
            f"{held_by(REDIS_PORT)}; set REDIS_URL to use it, or STACK_REDIS_PORT to run ours "
            "elsewhere"
        )
    return server.start()


def start_redis_cluster(nodes: int = CLUSTER_NODES) -> bool:
    """Start (creating it on the first start) the Redis Cluster of `nodes` masters unless it
    runs and is ok; True when this call started any node."""
    cluster = redis_cluster(nodes)
    try:
        return cluster.start()
    except StackError as error:
        raise StackError(
            f"{error}; set REDIS_URL (and REDIS_CLUSTER=true) to use a cluster you run, or "
            "STACK_REDIS_CLUSTER_PORT to run ours elsewhere"
        ) from None


def start_kafka() -> bool:
    """Start the KRaft broker unless ours runs; True when this call started it."""
    broker = kafka_broker()
    if broker.pid():
        return False
    for port in (KAFKA_PORT, CONTROLLER_PORT):
        if port_open(port):
            raise StackError(
                f"port {port} is taken by something this stack did not start{held_by(port)}; set "
                "KAFKA_BOOTSTRAP_SERVERS to use it, or STACK_KAFKA_PORT to run ours elsewhere"
            )
    return broker.start()


def ensure_topics() -> None:
    """Create the record-events topic and its DLQ (retention forever)."""
    from events.topics import ensure_topics as create

    target = client_settings() if SECURE else f"{HOST}:{KAFKA_PORT}"
    create(target, TOPIC, partitions=PARTITIONS)


def ensure_started(cluster_nodes: int = CLUSTER_NODES) -> StackInfo:
    """Start whatever is not running yet; return the addresses."""
    start(cluster_nodes)
    return info(cluster_nodes)


def start(cluster_nodes: int = CLUSTER_NODES, redis: bool = True) -> list[str]:
    """Start Redis (a cluster of `cluster_nodes` masters, or the single one; none unless
    `redis`) and Kafka as needed (honouring REDIS_URL / KAFKA_BOOTSTRAP_SERVERS)."""
    started = []
    given = StackSettings.from_env()  # servers of one's own, as they are now
    if redis and not given.redis_given:
        if cluster_nodes and start_redis_cluster(cluster_nodes):
            started.append("redis-cluster")
        elif not cluster_nodes and start_redis():
            started.append("redis")
    if not given.kafka_given:
        if start_kafka():
            started.append("kafka")
        ensure_topics()
    return started


def stop(names: list[str] | None = None) -> None:
    """Stop our services by pid (Kafka first, so it can flush while Redis still runs)."""
    # An empty list stops nothing: `run` passes what it started, often nothing at all.
    for name in SERVICES if names is None else names:
        if name == "redis-cluster":
            if cluster_ports_on_disk():
                redis_cluster().stop()
        else:
            (redis_server() if name == "redis" else kafka_broker()).stop()


def status() -> dict[str, int | None]:
    """Which of our services run, by pid."""
    return {name: running_pid(name) for name in SERVICES}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: `python -m scripts.stack` (scripts/stack_cli.py)."""
    from scripts.stack_cli import main as cli

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
