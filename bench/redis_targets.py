"""Private Redis targets for the `--redis-cluster` benches: one single Redis and one 3-master
Redis Cluster on loopback, started by the benches themselves and stopped by pid.

Both reuse the stack's supervisors (`scripts.servers.RedisServer`,
`scripts.redis_cluster.RedisClusterServer`), so the servers run with the same config (AOF on)
as the local stack; the clients come from `events.redis_client.connect()` with the
`REDIS_CLUSTER` setting, as the service does.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from bench.cpu import cpu_seconds
from config import Settings
from events.redis_client import connect
from scripts.redis_cluster import RedisClusterServer
from scripts.servers import RedisServer

SINGLE_PORT = 19379
CLUSTER_PORTS = (19401, 19402, 19403)


@dataclass(frozen=True)
class Target:
    """One Redis deployment a bench runs against: its name, URL, mode and server pids."""

    name: str
    url: str
    cluster: bool
    pids: dict[str, int]

    def settings(self, base: Settings) -> Settings:
        """`base` pointed at this target, as the service would be configured for it."""
        return replace(base, redis_url=self.url, redis_cluster=self.cluster)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each of the target's redis-server processes."""
        return {node: cpu_seconds(pid) for node, pid in self.pids.items()}

    def ping(self, base: Settings) -> None:
        """One PING through `connect()`, so a bad target fails before any timing starts."""
        client = connect(self.settings(base))
        try:
            client.ping()
        finally:
            client.close()


@contextmanager
def targets(
    single_port: int = SINGLE_PORT, cluster_ports: tuple[int, ...] = CLUSTER_PORTS
) -> Iterator[list[Target]]:
    """Start a private single Redis and a private 3-master cluster; yield both; stop both by
    pid whatever happens."""
    home = Path(tempfile.mkdtemp(prefix="prc-bench-redis-"))
    single = RedisServer(home / "single", single_port)
    cluster = RedisClusterServer(home / "cluster", cluster_ports)
    try:
        single.start()
        cluster.start()
        single_pid = single.pid()
        assert single_pid is not None, "single Redis did not leave a pid"
        node_pids = {f"node:{port}": pid for port, pid in cluster.pids().items() if pid}
        yield [
            Target("single", single.url, False, {f"single:{single_port}": single_pid}),
            Target("cluster (3 masters)", cluster.url, True, node_pids),
        ]
    finally:
        cluster.stop()
        single.stop()
