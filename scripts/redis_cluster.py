"""A Redis Cluster of ours on loopback: N masters (and R replicas of each) of Debian's redis-server.

Every node is a `ClusterNode` (a `RedisServer` with cluster mode on) living in `<home>/<port>`:
its pid file, log, AOF and `nodes.conf` are there, and it is stopped, killed and restarted by
its pid like every server of ours. The cluster is created once, with `redis-cli --cluster
create`; a later start finds every node's `nodes.conf` and the nodes rejoin by themselves, each
with its data from its AOF. Ready means `cluster_state:ok`, all 16384 slots served and every
node known, as seen by every running node (and each running replica linked to its master).

`scripts/stack.py` runs one for `STACK_REDIS_CLUSTER_NODES=3` and for `make test`'s cluster
pass; drills run private ones (`kill_node`, `start_node`, failover with `replicas=1`).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from redis.crc import key_slot

from scripts.cluster_node import ClusterNode, NodeView, bus_port
from scripts.ports import HOST, check_ports
from scripts.processes import StackError, log

__all__ = ["MIN_MASTERS", "SLOTS", "ClusterNode", "NodeView", "RedisClusterServer", "bus_port"]

SLOTS = 16384
MIN_MASTERS = 3  # what `redis-cli --cluster create` accepts (a lone node reports fail anyway)


class RedisClusterServer:
    """`masters` x (1 + `replicas`) cluster nodes on `ports`, each in `<home>/<port>`."""

    def __init__(
        self,
        home: Path,
        ports: Sequence[int],
        replicas: int = 0,
        node_timeout_ms: int = 2000,
        bus_ports: Sequence[int] | None = None,
        appendfsync: str = "everysec",
    ) -> None:
        self.home = Path(home)
        self.replicas_per_master = replicas
        if replicas < 0 or len(ports) % (1 + replicas):
            raise StackError(
                f"{len(ports)} ports cannot hold masters with {replicas} replicas each"
            )
        if len(ports) // (1 + replicas) < MIN_MASTERS:
            raise StackError(f"a Redis Cluster needs at least {MIN_MASTERS} masters")
        buses = list(bus_ports) if bus_ports is not None else [bus_port(p) for p in ports]
        if len(buses) != len(ports):
            raise StackError("one bus port per node is needed")
        self.nodes = {
            port: ClusterNode(self.home / str(port), port, bus, node_timeout_ms, appendfsync)
            for port, bus in zip(ports, buses, strict=True)
        }

    @property
    def ports(self) -> tuple[int, ...]:
        """The nodes' client ports, the first one being the seed."""
        return tuple(self.nodes)

    @property
    def url(self) -> str:
        """A seed node's redis:// URL, clients discover the other nodes from it: the first
        node's, or while that one is down the first running node's."""
        running = self._running()
        return f"redis://{HOST}:{running[0].port if running else self.ports[0]}/0"

    def node(self, port: int) -> ClusterNode:
        """The node on `port`."""
        try:
            return self.nodes[port]
        except KeyError:
            raise StackError(f"no node of this cluster listens on {port}") from None

    def pids(self) -> dict[int, int | None]:
        """Each node's pid (None when it is not running), by port."""
        return {port: node.pid() for port, node in self.nodes.items()}

    def start(self, timeout: float = 60.0) -> bool:
        """Start every node that is not running, create the cluster on its first start, wait
        until it is ok. True when this call started any node."""
        stopped = [node for node in self.nodes.values() if not node.pid()]
        check_ports(*(port for node in stopped for port in node.ports))
        try:
            for node in stopped:
                node.start()
            if self._fresh():
                self._create()
            self.wait_ok(timeout)
        except BaseException:
            for node in stopped:  # leave nothing running that the caller does not know of
                node.stop()
            raise
        log(f"redis cluster ok on {HOST}:{','.join(map(str, self.ports))}")
        return bool(stopped)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM every node (each fsyncs its AOF and saves nodes.conf); True if any ran."""
        return any([node.stop(timeout) for node in self.nodes.values()])

    def kill(self) -> bool:
        """SIGKILL every node (a test's teardown); True if any ran."""
        return any([node.kill() for node in self.nodes.values()])

    def kill_node(self, port: int) -> bool:
        """SIGKILL one node, as a crash would; True if it was running."""
        return self.node(port).kill()

    def start_node(self, port: int) -> bool:
        """Start one node again (same port, its AOF and nodes.conf); it rejoins by itself.
        Returns once it answers; `wait_ok` waits for the cluster."""
        return self.node(port).start()

    def wait_ok(self, timeout: float = 60.0) -> None:
        """Wait until every running node sees the whole cluster ok (see the module's doc)."""
        deadline = time.monotonic() + timeout
        problem = "no node runs"
        while time.monotonic() < deadline:
            try:
                problem = self._problem()
            except redis.RedisError as error:
                problem = f"{type(error).__name__}: {error}"
            if problem is None:
                return
            time.sleep(0.1)
        raise StackError(f"redis cluster not ok after {timeout:.0f}s: {problem}")

    def view(self) -> list[NodeView]:
        """CLUSTER NODES as the first running node sees it."""
        for node in self._running():
            try:
                return [
                    NodeView.parse(line) for line in node.query("CLUSTER", "NODES").splitlines()
                ]
            except redis.RedisError:
                continue
        raise StackError("no node of the cluster answers")

    def primaries(self) -> list[int]:
        """Ports of the masters serving slots (not failed)."""
        return sorted(view.port for view in self.view() if view.is_primary)

    def replicas_of(self, port: int) -> list[int]:
        """Ports of the (live) replicas of the master on `port`."""
        views = self.view()
        master = next((view.id for view in views if view.port == port), None)
        return sorted(v.port for v in views if v.is_replica and v.master_id == master)

    def replicas(self) -> list[int]:
        """Ports of the live replicas."""
        return sorted(view.port for view in self.view() if view.is_replica)

    def owner(self, key: str | bytes) -> int:
        """The port of the master that serves `key`'s slot now."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        for view in self.view():
            if view.is_primary and view.owns(slot):
                return view.port
        raise StackError(f"no live master serves slot {slot}")

    # -- internals ---------------------------------------------------------------------------

    def _running(self) -> list[ClusterNode]:
        return [node for node in self.nodes.values() if node.pid()]

    def _fresh(self) -> bool:
        """True when no node has met another yet (a first start); fails on a half-made cluster."""
        infos = {port: node.cluster_info() for port, node in self.nodes.items()}
        alone = [p for p, i in infos.items() if i["cluster_known_nodes"] == "1"]
        if len(alone) == len(infos) and all(
            i["cluster_slots_assigned"] == "0" for i in infos.values()
        ):
            return True
        if not alone:
            return False
        raise StackError(
            f"nodes {alone} of the Redis Cluster under {self.home} know no other node while the "
            "others were joined (data lost?); stop it and remove that folder to create it afresh"
        )

    def _create(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise StackError("redis-cli is missing (Debian's redis-tools, beside redis-server)")
        replicas = self.replicas_per_master
        masters = len(self.nodes) // (1 + replicas)
        log(f"creating a redis cluster: {masters} masters, {replicas} replica(s) each")
        argv = [cli, "--cluster", "create", *(f"{HOST}:{port}" for port in self.nodes)]
        argv += ["--cluster-replicas", str(replicas), "--cluster-yes"]
        logfile = self.home / "create.log"
        with open(logfile, "wb") as out:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if done.returncode != 0:
            tail = logfile.read_text(errors="replace")[-3000:]
            raise StackError(f"redis-cli --cluster create failed ({done.returncode}):\n{tail}")

    def _problem(self) -> str | None:
        """What keeps the cluster from being ok now, or None."""
        running = self._running()
        if not running:
            return "no node runs"
        for node in running:
            info = node.cluster_info()
            if info.get("cluster_state") != "ok":
                return f"{node.port}: cluster_state {info.get('cluster_state')}"
            if info.get("cluster_slots_ok") != str(SLOTS):
                return f"{node.port}: {info.get('cluster_slots_ok')} slots ok"
            if info.get("cluster_known_nodes") != str(len(self.nodes)):
                return f"{node.port}: knows {info.get('cluster_known_nodes')} nodes"
            replication = node.replication()
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return f"{node.port}: replica not linked to its master yet"
        return None
