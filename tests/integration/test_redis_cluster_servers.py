"""The Redis Cluster of ours (scripts/redis_cluster.py) that the cluster pass and drills run on:
it forms, spreads keys over every master, survives a node's SIGKILL and a clean restart with
its data and its identity, and with replicas fails a killed master over."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from scripts.harness import free_port, wait_until
from scripts.redis_cluster import RedisClusterServer
from scripts.servers import StackError

pytestmark = pytest.mark.own_redis  # clusters of its own, whichever the pass
Make = Callable[..., RedisClusterServer]
KEYS = [f"k{{org-{n}}}" for n in range(300)]


def node_ids(cluster: RedisClusterServer) -> dict[int, str]:
    return {view.port: view.id for view in cluster.view()}


def write_keys(cluster: RedisClusterServer) -> None:
    client = RedisCluster.from_url(cluster.url)
    try:
        for key in KEYS:
            client.set(key, key)
    finally:
        client.close()


def read_keys(cluster: RedisClusterServer) -> dict[str, str | None]:
    client = RedisCluster.from_url(cluster.url, decode_responses=True)
    try:
        return {key: client.get(key) for key in KEYS}
    finally:
        client.close()


def test_three_masters_form_share_the_keys_and_come_back_from_a_kill(
    private_cluster: Make,
) -> None:
    cluster = private_cluster()
    assert cluster.primaries() == sorted(cluster.ports)
    write_keys(cluster)
    # Every master holds its share of the keys, exactly the keys whose slot it serves.
    for port, node in cluster.nodes.items():
        with node.client() as client:
            held = set(client.keys("k*"))
        assert held, f"master {port} got no key"
        assert held == {key for key in KEYS if cluster.owner(key) == port}

    victim = cluster.owner(KEYS[0])
    ids = node_ids(cluster)
    assert cluster.kill_node(victim)
    survivor = cluster.nodes[next(p for p in cluster.ports if p != victim)]
    # Without replicas its slots are down: the other masters see the cluster fail.
    wait_until(
        lambda: survivor.cluster_info()["cluster_state"] == "fail", 30, "the cluster to fail"
    )

    cluster.start_node(victim)  # from its AOF and nodes.conf, on its own port
    cluster.wait_ok(60)
    assert node_ids(cluster) == ids  # the same node rejoined, nothing was re-created
    assert read_keys(cluster) == {key: key for key in KEYS}


def test_a_clean_restart_reuses_nodes_conf_and_data(private_cluster: Make) -> None:
    cluster = private_cluster()
    write_keys(cluster)
    ids = node_ids(cluster)
    created = (cluster.home / "create.log").stat().st_mtime_ns
    assert cluster.stop()
    assert all(pid is None for pid in cluster.pids().values())

    assert cluster.start()
    assert node_ids(cluster) == ids
    assert (cluster.home / "create.log").stat().st_mtime_ns == created  # no second create
    assert read_keys(cluster) == {key: key for key in KEYS}
    assert cluster.start() is False  # already running and ok: nothing to start


def test_a_killed_master_fails_over_to_its_replica(private_cluster: Make) -> None:
    cluster = private_cluster(masters=3, replicas=1)
    assert len(cluster.primaries()) == 3 and len(cluster.replicas()) == 3
    write_keys(cluster)
    victim = cluster.owner(KEYS[0])
    [replica] = cluster.replicas_of(victim)
    with cluster.nodes[victim].client() as client:
        assert client.wait(1, 5000) == 1  # the replica has every write before the crash

    assert cluster.kill_node(victim)
    wait_until(lambda: replica in cluster.primaries(), 30, "the replica to be promoted")
    cluster.wait_ok(30)
    assert cluster.owner(KEYS[0]) == replica
    assert read_keys(cluster) == {key: key for key in KEYS}

    # The old master comes back as a replica of the one that took over.
    cluster.start_node(victim)
    cluster.wait_ok(60)
    assert cluster.replicas_of(replica) == [victim]
    assert victim not in cluster.primaries()


def test_a_taken_port_is_reported_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = [free_port(), taken, free_port()]
        cluster = RedisClusterServer(tmp_path / "c", ports, bus_ports=[free_port() for _ in ports])
        with pytest.raises(StackError, match=f"port\\(s\\) {taken} taken"):
            cluster.start()
    assert all(pid is None for pid in cluster.pids().values())


@pytest.mark.parametrize(
    ("ports", "replicas"), [([1, 2], 0), ([1, 2, 3, 4], 1), ([1, 2, 3, 4, 5], 1)]
)
def test_shapes_that_are_no_cluster_are_refused(
    tmp_path: Path, ports: list[int], replicas: int
) -> None:
    with pytest.raises(StackError):
        RedisClusterServer(tmp_path, ports, replicas=replicas)
