"""CLUSTER NODES lines as scripts/redis_cluster.py reads them, and the bus port it picks."""

from __future__ import annotations

import pytest

from scripts.redis_cluster import NodeView, bus_port

MASTER = (
    "4ccf88dc1545a93db04df7e5e25de81341cec95a 127.0.0.1:7002@17002 myself,master - 0 0 2 "
    "connected 5461-10922 12000 [5460->-da32b8da89e8461d9864bf8c34bd9f6f2acd6a98]"
)
REPLICA = (
    "da32b8da89e8461d9864bf8c34bd9f6f2acd6a98 127.0.0.1:7005@17005,node-5 slave "
    "4ccf88dc1545a93db04df7e5e25de81341cec95a 0 1764658000000 2 connected"
)
FAILED = (
    "bcba6978e743189e15584845604074dd2286f15c 127.0.0.1:7001@17001 master,fail - 1 1 1 "
    "disconnected 0-5460"
)


def test_a_master_line() -> None:
    view = NodeView.parse(MASTER)
    assert (view.port, view.master_id) == (7002, None)
    assert view.slots == ((5461, 10922), (12000, 12000))  # a migrating slot is not counted
    assert view.is_primary and not view.is_replica
    assert view.owns(5461) and view.owns(12000) and not view.owns(5460) and not view.owns(11000)


def test_a_replica_line_with_a_hostname() -> None:
    view = NodeView.parse(REPLICA)
    assert view.port == 7005
    assert view.master_id == "4ccf88dc1545a93db04df7e5e25de81341cec95a"
    assert view.is_replica and not view.is_primary and view.slots == ()


def test_a_failed_master_is_no_primary() -> None:
    view = NodeView.parse(FAILED)
    assert view.owns(0) and not view.is_primary


@pytest.mark.parametrize(("port", "bus"), [(7001, 17001), (55535, 65535), (57001, 47001)])
def test_bus_ports_stay_in_range(port: int, bus: int) -> None:
    assert bus_port(port) == bus
