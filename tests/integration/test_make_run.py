"""`make run`'s chain (stack + projector + API) comes up, answers, and Ctrl-C leaves nothing:
with the single Redis, and with `STACK_REDIS_CLUSTER_NODES=3` on a 3-master Redis Cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from scripts.harness import ROOT, free_cluster_ports, free_port, wait_until

# The chain runs a stack of its own, whichever Redis the session has.
pytestmark = pytest.mark.own_redis


def _alive(pid: int) -> bool:
    # A zombie has exited; it only waits for its parent to read its status.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (psutil.Error, ProcessLookupError):
            continue  # ended meanwhile
    return members


def _environ(pid: int) -> dict[str, str]:
    return psutil.Process(pid).environ()


@pytest.mark.parametrize("cluster_nodes", [0, 3], ids=["single-redis", "redis-cluster"])
def test_run_chain_starts_everything_and_ctrl_c_stops_everything(
    tmp_path: Path, cluster_nodes: int
) -> None:
    ports = {name: str(free_port()) for name in ("kafka", "controller", "redis", "api", "metrics")}
    first = free_cluster_ports(cluster_nodes) if cluster_nodes else 0
    nodes = [str(port) for port in range(first, first + cluster_nodes)]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "REDIS_CLUSTER")
        and not k.startswith(("PYTEST", "STACK_REDIS_CLUSTER"))
    }
    env.update(
        STACK_REDIS_CLUSTER_NODES=str(cluster_nodes),
        STACK_REDIS_CLUSTER_PORT=str(first or 7001),
        STACK_KAFKA_PORT=ports["kafka"],
        STACK_KAFKA_CONTROLLER_PORT=ports["controller"],
        STACK_REDIS_PORT=ports["redis"],
        PORT=ports["api"],
        PROJECTOR_METRICS_PORT=ports["metrics"],
        PRC_STATE_DIR=str(tmp_path / "state"),
        WEB_CONCURRENCY="1",
        BIND_HOST="127.0.0.1",
    )
    # What `make run` runs, in a process group of its own so "Ctrl-C" reaches all of it.
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scripts.stack",
                "run",
                "--",
                sys.executable,
                "-m",
                "scripts.serve",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            url = f"http://127.0.0.1:{ports['api']}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200

        wait_until(healthy, 120, "the API behind make run")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics") as response:
            assert b"projector_events_applied_total" in response.read()
        state = tmp_path / "state"
        pidfiles = [state / "kafka" / "kafka.pid"]
        if cluster_nodes:
            pidfiles += [state / "redis-cluster" / port / "redis.pid" for port in nodes]
        else:
            pidfiles.append(state / "redis" / "redis.pid")
        pids = [int(pidfile.read_text()) for pidfile in pidfiles]
        members = _group_members(proc.pid)
        assert all(_alive(pid) for pid in pids + members)
        # The projector and the API were handed the Redis the stack started, and its kind.
        seed = f"redis://127.0.0.1:{nodes[0] if cluster_nodes else ports['redis']}/0"
        children = [_environ(pid) for pid in members if pid != proc.pid]
        assert children and all(child["REDIS_URL"] == seed for child in children)
        assert {child["REDIS_CLUSTER"] for child in children} == {str(bool(cluster_nodes)).lower()}

        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert proc.wait(timeout=60) in (0, 130, -signal.SIGINT)
        every = pids + members
        wait_until(lambda: not any(_alive(pid) for pid in every), 30, "every process to exit")
        assert not any(pidfile.exists() for pidfile in pidfiles)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("make run's chain did not stop on Ctrl-C")
