"""Real processes for tests, drills and benchmarks: start by pid, wait on observable state."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
from redis.cluster import RedisCluster

from config import FILE_VARIANTS, Settings, StackSettings
from events.redis_client import is_cluster
from scripts.cluster_node import bus_port
from scripts.ports import ports_taken

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_until(
    check: Callable[[], T], timeout: float, message: str = "condition", interval: float = 0.05
) -> T:
    """Poll `check` until it returns a truthy value; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # a failing probe means "not yet"
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {message}{detail}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_cluster_ports(nodes: int) -> int:
    """The first of `nodes` consecutive loopback ports that, with their cluster bus ports,
    nothing listens on now: for a stack cluster (`STACK_REDIS_CLUSTER_PORT`) of a test's own.
    Drawn below the kernel's ephemeral range (32768..), where connections do not land."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(21000, 22700 - nodes)
        ports = range(first, first + nodes)
        if not ports_taken([*ports, *map(bus_port, ports)], wait=0):
            return first
    raise RuntimeError(f"no {nodes} free consecutive ports found")


def delete_matching(client: Any, pattern: str) -> int:
    """UNLINK every key matching `pattern` (on every primary of a cluster); how many."""
    scan = {"target_nodes": RedisCluster.PRIMARIES} if is_cluster(client) else {}
    batch: list[bytes] = []
    deleted = 0
    for key in client.scan_iter(match=pattern, count=5000, **scan):
        batch.append(key)
        if len(batch) >= 5000:
            deleted += client.unlink(*batch)  # a cluster client splits it by slot
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted


class Proc:
    """A child process of ours, its output in a log file, stopped by its pid."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{int(time.time() * 1000)}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as out:
            self.popen = subprocess.Popen(
                argv,
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        """Send `sig` to the process group (gunicorn's workers included). Only while the
        leader, our child, is not reaped: until then its pid, the group's id, is not reused."""
        if self.alive():
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait; SIGKILL if it will not go. Returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.popen.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def output(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The process environment with `settings` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    values = settings.to_env() | extra
    for name in FILE_VARIANTS:  # a secret given by value replaces the file it came from
        if name in values:
            env.pop(f"{name}_FILE", None)
    env.update(values)
    return env


def log_dir() -> Path:
    """Where child-process logs go (kept after a failed test, for reading)."""
    return StackSettings.from_env().log_dir / "prc-test-logs"


def start_projector(settings: Settings, **extra: str) -> Proc:
    """`python -m projector` with these settings."""
    return Proc(
        "projector", [sys.executable, "-m", "projector"], child_env(settings, **extra), log_dir()
    )


def start_rebuild(settings: Settings, *args: str, **extra: str) -> Proc:
    """`python -m projector rebuild ARGS` with these settings (its progress is in `output()`)."""
    argv = [sys.executable, "-m", "projector", "rebuild", *args]
    return Proc("rebuild", argv, child_env(settings, **extra), log_dir())


def start_api(settings: Settings, timeout: float = 30.0, **extra: str) -> Proc:
    """`python -m api` (gunicorn) with these settings, once /healthz answers."""
    # Tests and benchmarks only ever talk to loopback: listen nowhere else.
    env = child_env(settings, **{"BIND_HOST": "127.0.0.1", **extra})
    proc = Proc("api", [sys.executable, "-m", "api"], env, log_dir())
    return _healthy(proc, settings.port, timeout, "the API's /healthz")


def start_pg_service(settings: Settings, conninfo: str, timeout: float = 30.0) -> Proc:
    """bench/pg_service.py (the service on PostgreSQL) under gunicorn with the API's own
    config file (api/gunicorn_conf.py: workers, keepalive, limits) on `settings.port`, once
    its /healthz answers; its `snapshots` table is created first."""
    from bench.pg_service import create_schema

    create_schema(conninfo)
    env = child_env(settings, BIND_HOST="127.0.0.1", PG_SERVICE_CONNINFO=conninfo)
    config = str(ROOT / "api" / "gunicorn_conf.py")
    argv = [sys.executable, "-m", "gunicorn", "--config", config, "bench.pg_service:app"]
    proc = Proc("pg-service", argv, env, log_dir())
    return _healthy(proc, settings.port, timeout, "the PostgreSQL service's /healthz")


def _healthy(proc: Proc, port: int, timeout: float, what: str) -> Proc:
    """`proc` once GET /healthz on `port` answers 200; stopped (by pid) if it never does."""
    url = f"http://127.0.0.1:{port}/healthz"

    def healthy() -> bool:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.output()[-2000:]}")
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    try:
        wait_until(healthy, timeout, what)
    except BaseException:
        proc.stop()  # a server that never became healthy must not outlive the caller
        raise
    return proc


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (e.g. gunicorn's workers); none when it is gone."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def rss_bytes(pid: int) -> int | None:
    """Resident set size of `pid`, or None when it is gone."""
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return None
