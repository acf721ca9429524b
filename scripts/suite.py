"""`make test`: the suite on a single Redis, then the Redis tests again on a Redis Cluster.

- pass `single`: every test (unit and integration) on Kafka and a single Redis;
- pass `cluster`: the integration tests again with `REDIS_CLUSTER=true` on a Redis Cluster of
  3 masters, less the tests that run Redis servers of their own (marker `own_redis`: the
  drills that kill and restart a private redis-server, the tests of the cluster servers)
  and those that cut a relay in front of one Redis (marker `single_redis`).

Both passes run, whatever the first one gives; the durations and exit codes are printed at the
end, and the exit code is the first failing pass's (pytest's 5, "no tests collected", too).
The servers: `KAFKA_BOOTSTRAP_SERVERS`, `REDIS_URL` (the single pass) and
`TEST_REDIS_CLUSTER_URL` (a node of the cluster pass's cluster) when set, otherwise the local
stack's (`scripts/stack.py`; its cluster has `STACK_REDIS_CLUSTER_NODES` masters, at least 3),
started here and stopped again if this started them.

    python -m scripts.suite [PYTEST ARGS...]  # both passes; the args go to both
    TEST_PASSES=cluster python -m scripts.suite tests/integration/test_store.py -x
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from config import StackSettings
from scripts import stack
from scripts.processes import log
from scripts.redis_cluster import MIN_MASTERS

PASSES = ("single", "cluster")
CLUSTER_MARKS = "not drill and not own_redis and not single_redis"
INTERRUPTED = 2  # pytest's exit code after Ctrl-C
SERVERS_FAILED = 3  # a pass whose servers did not start (pytest's own "internal error" code)


def passes_wanted(raw: str | None) -> list[str]:
    """TEST_PASSES (comma-separated, default both) in their fixed order."""
    wanted = {part.strip() for part in (raw or ",".join(PASSES)).split(",") if part.strip()}
    unknown = wanted - set(PASSES)
    if unknown or not wanted:
        raise SystemExit(f"TEST_PASSES takes {' and/or '.join(PASSES)}, got {raw!r}")
    return [name for name in PASSES if name in wanted]


def cluster_args(args: list[str]) -> list[str]:
    """The cluster pass's pytest arguments: the integration tests unless paths are given."""
    names_paths = any(Path(arg.split("::", 1)[0]).exists() for arg in args if arg[:1] != "-")
    return ["-m", CLUSTER_MARKS, *(args if names_paths else ["tests/integration", *args])]


def _pass_env(name: str, nodes: int, cluster_url: str | None, started: list[str]) -> dict[str, str]:
    """Start what pass `name` needs (appending to `started`); the environment of its pytest."""
    if name == "single":
        started += stack.start(cluster_nodes=0)  # Kafka, and the single Redis unless REDIS_URL
        return dict(stack.child_env(cluster_nodes=0), REDIS_CLUSTER="false")
    started += stack.start(redis=False)  # Kafka; the stack's cluster unless one is named
    if not cluster_url and stack.start_redis_cluster(nodes):
        started.append("redis-cluster")
    url = cluster_url or stack.info(cluster_nodes=nodes).redis_url
    return dict(stack.child_env(cluster_nodes=0), REDIS_URL=url, REDIS_CLUSTER="true")


def main(argv: list[str] | None = None) -> int:
    """Start what the passes need, run them, stop what was started; the first failure's code."""
    args = sys.argv[1:] if argv is None else argv
    settings = StackSettings.from_env()
    wanted = passes_wanted(settings.test_passes)
    cluster_url = settings.test_redis_cluster_url
    nodes = max(stack.CLUSTER_NODES, MIN_MASTERS)
    started: list[str] = []
    results: list[tuple[str, int, float]] = []
    try:
        for name in wanted:
            try:
                env = _pass_env(name, nodes, cluster_url, started)
            except stack.StackError as error:  # the other pass's results still count
                log(f"{name} pass: its servers did not start: {error}")
                results.append((name, SERVERS_FAILED, 0.0))
                continue
            pytest_args = args if name == "single" else cluster_args(args)
            log(f"{name} pass: pytest {' '.join(pytest_args)} on Redis {env['REDIS_URL']}")
            began = time.monotonic()
            code = stack.run_child([sys.executable, "-m", "pytest", *pytest_args], env)
            results.append((name, code, time.monotonic() - began))
            if code == INTERRUPTED:
                break
    finally:
        stack.stop([name for name in stack.SERVICES if name in started])
    for name, code, seconds in results:
        log(f"{name} pass: exit {code} in {seconds / 60:.1f} min ({seconds:.0f} s)")
    return next((code for _, code, _ in results if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
