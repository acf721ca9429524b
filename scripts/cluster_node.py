"""One node of a Redis Cluster of ours, and one node as the cluster sees it.

`ClusterNode` is a `RedisServer` with cluster mode on, living in `<home>/<port>` (its pid file,
log, AOF and `nodes.conf`); `NodeView` is one line of CLUSTER NODES. `scripts/redis_cluster.py`
runs N of them as one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from scripts.ports import HOST
from scripts.redis_server import RedisServer


def bus_port(port: int) -> int:
    """The node's cluster bus port: Redis's usual port + 10000, or port - 10000 above 55535."""
    return port + 10000 if port + 10000 <= 65535 else port - 10000


class ClusterNode(RedisServer):
    """One redis-server in cluster mode: its `nodes.conf` beside its AOF in its data folder."""

    def __init__(
        self, home: Path, port: int, bus: int, node_timeout_ms: int, appendfsync: str = "everysec"
    ) -> None:
        super().__init__(home, port, appendfsync)
        self.bus = bus
        self.node_timeout_ms = node_timeout_ms

    @property
    def ports(self) -> tuple[int, ...]:
        """The client port and the cluster bus port."""
        return (self.port, self.bus)

    def config(self) -> str:
        """The single Redis's configuration, plus cluster mode."""
        return super().config() + (
            "cluster-enabled yes\n"
            "cluster-config-file nodes.conf\n"  # relative to `dir`: beside the AOF
            f"cluster-node-timeout {self.node_timeout_ms}\n"
            f"cluster-port {self.bus}\n"
        )

    def client(self) -> redis.Redis:
        """A plain client of this one node (short timeouts: it may be down)."""
        return redis.Redis(
            host=HOST,
            port=self.port,
            socket_timeout=2,
            socket_connect_timeout=2,
            decode_responses=True,
        )

    def query(self, *command: str) -> str:
        """The text of one reply, unparsed, e.g. `query("CLUSTER", "NODES")`."""
        with self.client() as client:
            return str(client.execute_command(*command))

    def cluster_info(self) -> dict[str, str]:
        """CLUSTER INFO as a dict."""
        lines = self.query("CLUSTER", "INFO").splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line)

    def replication(self) -> dict[str, object]:
        """INFO replication as a dict."""
        with self.client() as client:
            return client.info("replication")


@dataclass(frozen=True)
class NodeView:
    """One line of CLUSTER NODES."""

    id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def is_primary(self) -> bool:
        """A master that is not failed and serves slots."""
        return "master" in self.flags and "fail" not in self.flags and bool(self.slots)

    @property
    def is_replica(self) -> bool:
        """A replica that is not failed."""
        return "slave" in self.flags and "fail" not in self.flags

    def owns(self, slot: int) -> bool:
        """Whether `slot` is one of this node's."""
        return any(low <= slot <= high for low, high in self.slots)

    @classmethod
    def parse(cls, line: str) -> NodeView:
        """`<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`."""
        parts = line.split()
        address = parts[1].split("@", 1)[0]
        slots = []
        for part in parts[8:]:
            if part.startswith("["):  # a slot being migrated or imported
                continue
            low, _, high = part.partition("-")
            slots.append((int(low), int(high or low)))
        return cls(
            id=parts[0],
            port=int(address.rsplit(":", 1)[1]),
            flags=frozenset(parts[2].split(",")),
            master_id=None if parts[3] == "-" else parts[3],
            slots=tuple(slots),
        )
