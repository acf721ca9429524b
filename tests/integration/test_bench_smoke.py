"""Every bench still runs: each one's `--quick` mode, made smaller still, as a subprocess
(`python -m bench.X --quick ...`) on the session's Kafka and Redis, must exit 0 and print its
report: the tables' headers and the lines that say every count matched the oracle. The
figures themselves are not judged (a smoke run on a busy machine says nothing about speed).

Single pass only (marker `own_redis`, which make test's cluster pass leaves out): the
`--redis-cluster` modes start Redis servers of their own (bench/redis_targets.py), and the
other benches measure one Redis (series_latency's sorted-set baseline is one pipeline on it).

What the benches need besides Kafka and Redis:
- wrk: not installed by `scripts.stack test-deps`, so the API benches get
  `--load-client python` (the gevent client in the bench's own process);
- PostgreSQL (api_latency, --busy-org, series_latency): not installed by test-deps either;
  bench/pg.py installs Debian's `postgresql` through `scripts.stack.apt_install` when no
  initdb is found (as scripts/servers.py does for redis-server), here before those benches
  start (fixture `postgres`), so no bench's time limit pays for the install;
- the quiet-machine waits are cut to none and one run (`--quiet-wait 0 --attempts 1`: no
  3 s sample before each phase): every phase still runs and is checked, only not repeated.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.pg import bin_dir
from scripts.harness import ROOT
from tests.conftest import Services

pytestmark = [pytest.mark.integration, pytest.mark.own_redis]

NO_WAIT = ["--quiet-wait", "0", "--attempts", "1"]
API_LOAD = ["--requests", "10", "--seconds", "1", "--load-client", "python", *NO_WAIT]
SERIES = ["--zones", "Europe/Oslo", "--shapes", "366 daily"]  # one zone with DST, the target
VERDICTS = "| target | measured | verdict |"

# bench module, its arguments, lines its report must hold
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "api_latency": (
        "bench.api_latency",
        ["--quick", "--events", "5000", *API_LOAD],
        [
            "| span | mean count | API p50 | API p99 | Redis count p50 | PG p50 |",
            "all 50 ranges: API count == PostgreSQL == Redis direct == oracle",
            "ranges under load: API count == oracle",
            "| process | CPU % of one core |",
            VERDICTS,
        ],
    ),
    "busy_org": (
        "bench.api_latency",
        ["--busy-org", "--quick", "--busy-events", "5000", "--quiet-events", "500", *API_LOAD],
        [
            "| span | mean busy-org count | API p50 | API p99 | PG service p50 |",
            "all 50 ranges: API == PG service == Redis == SQL == oracle",
            "| service | req/s | requests | p50 ms |",
            VERDICTS,
        ],
    ),
    "api_cluster": (
        "bench.api_latency",
        ["--redis-cluster", "--quick", "--events", "5000", *API_LOAD],
        [
            "all ranges on both: API count == oracle (10 sequential + load)",
            "| Redis | POST p50 ms | POST p99 ms | loaded req/s |",
            "| single |",
            "| cluster (3 masters) |",
            "| cluster / single |",
        ],
    ),
    "series_latency": (
        "bench.series_latency",
        ["--quick", "--events", "5000", "--requests", "3", "--posts", "1", *NO_WAIT, *SERIES],
        [
            "| series | tz | buckets | mean total | API p50 | API p99 |",
            "| single POST count (1 year) | UTC |",
            "| 366 daily | Europe/Oslo |",
            VERDICTS,
        ],
    ),
    "projector_throughput": (
        "bench.projector_throughput",
        ["--quick", "--events", "5000"],
        [
            "| reader | seconds | events/s | ratio to bare |",
            "| bare kafka-python consumer (read only) |",
            "| projector, 1 member |",
            "| key kind | bytes | bytes/event | encodings |",
        ],
    ),
    "rebuild": (
        "bench.rebuild",
        ["--quick"],
        [
            "| reader | records/s | seconds reading | seconds to switch |",
            "| rebuild, live load (200 events/s in, 2 POST clients) |",
            "| POST latency | requests | p50 ms | p99 ms |",
            "p99 during / without:",
        ],
    ),
    "sse_fanout": (
        "bench.sse_fanout",
        ["--quick"],
        ["| streams | opened | events | p50 ms | p99 ms | max ms | missed |", "largest N with"],
    ),
    "rebalance_stall": (
        "bench.rebalance_stall",
        ["--quick"],
        [
            "| assignor | change | partitions stalled > 1 s | longest stall (s) |",
            "| range | a 4th joins |",
            "| cooperative-sticky | the 4th leaves (SIGTERM, static) |",
        ],
    ),
}


NEEDS_POSTGRES = {"api_latency", "busy_org", "series_latency"}


@pytest.fixture(scope="module")
def postgres() -> Path:
    """Debian's PostgreSQL bin folder, installed now if it is missing (bench/pg.py)."""
    return bin_dir()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(BENCHES))
def test_a_quick_bench_runs_and_reports(
    name: str, services: Services, request: pytest.FixtureRequest
) -> None:
    module, args, expected = BENCHES[name]
    if name in NEEDS_POSTGRES:
        request.getfixturevalue("postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=services.kafka_bootstrap_servers,
        REDIS_URL=services.redis_url,
        REDIS_CLUSTER="false",
    )
    env.pop("REDIS_URL_FILE", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"{module} {args} exited {done.returncode}:\n{report[-6000:]}"
    missing = [line for line in expected if line not in done.stdout]
    assert not missing, f"{module} {args} did not print {missing}:\n{report[-6000:]}"
    print(f"{name}: {time.monotonic() - started:.0f} s")
