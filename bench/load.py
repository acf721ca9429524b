"""Throughput load on an API: `wrk` (C, epoll; its Lua below) or gevent greenlets in this
process, one keep-alive connection per pool of fresh ranges; every answer is logged and its
count checked against the oracle, in a phase run on a quiet machine (bench/quiet.py)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import gevent.socket

from bench.cpu import CpuMeter
from bench.http_client import HttpClient
from bench.quiet import quietly
from bench.ranges import PATH, Query, api_call, check
from bench.stats import pct
from events.schema import format_utc
from tests.support.oracles import ExactCounts


@dataclass
class Load:
    """What a throughput run measured: req/s, each answered range and its count, latency."""

    rate: float
    answered: list[tuple[Query, int]]
    p50: float
    p99: float


def throughput(port: int, pools: list[list[Query]], seconds: float) -> tuple[float, list[Any]]:
    """req/s of len(pools) greenlet clients POSTing their pools for `seconds`; the results."""
    results: list[tuple[float, Query, int]] = []
    deadline = time.monotonic() + seconds

    def client(pool: list[Query]) -> None:
        http = HttpClient(port, gevent.socket)
        call = api_call(http)
        for q in pool:
            if time.monotonic() >= deadline:
                break
            started = time.perf_counter()
            count = call(q)
            results.append((time.perf_counter() - started, q, count))
        http.close()

    started = time.monotonic()
    jobs = [gevent.spawn(client, pool) for pool in pools]
    gevent.joinall(jobs, timeout=seconds + 60, raise_error=True)
    if not all(job.dead for job in jobs):
        gevent.killall(jobs)
        raise TimeoutError("load clients did not finish")
    return len(results) / (time.monotonic() - started), results


# wrk's Lua: each thread POSTs the next body of its file (one JSON body a line, every range
# fresh) and writes each response's status and body to its log, for the counts to be checked.
WRK_LUA = """
local bodies, next_body, log = {}, 0, nil
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  for line in io.lines(args[1] .. "." .. id) do bodies[#bodies + 1] = line end
  log = io.open(args[2] .. "." .. id, "w")
  log:setvbuf("full")
end
function request()
  next_body = next_body + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[next_body])
end
function response(status, headers, body)
  log:write(status, " ", body, "\\n")
end
function done(summary, latency, requests)
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_throughput(port: int, pools: list[list[Query]], seconds: float, threads: int) -> Load:
    """`wrk` (C, epoll) with one connection per pool, `threads` threads, for `seconds`.

    Every response is logged by wrk's Lua and checked here: 201 (every range is fresh), its
    range one that was sent and answered once. The caller checks the counts."""
    from scripts.servers import apt_install

    binary = apt_install("wrk", "wrk")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        script, bodies, logs = (os.path.join(folder, name) for name in ("load.lua", "b", "r"))
        Path(script).write_text(WRK_LUA)
        sent: dict[tuple[str, str, str], Query] = {}
        per_thread: list[list[Query]] = [[] for _ in range(threads)]
        for i, pool in enumerate(pools):  # wrk gives each thread len(pools) / threads conns
            per_thread[i % threads].extend(pool)
        for i, queries in enumerate(per_thread, start=1):
            with open(f"{bodies}.{i}", "wb") as out:
                for q in queries:
                    out.write(q.body() + b"\n")
                    sent[(q.org, format_utc(q.start), format_utc(q.end))] = q
        argv = [binary, f"-t{threads}", f"-c{len(pools)}", f"-d{seconds:g}s", "--timeout", "10s"]
        argv += ["-s", script, f"http://127.0.0.1:{port}{PATH}", "--", bodies, logs]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        summary_line = [line for line in proc.stdout.splitlines() if line.startswith("WRK ")]
        if proc.returncode != 0 or not summary_line:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        summary = json.loads(summary_line[-1][4:])
        answered: list[tuple[Query, int]] = []
        seen: set[tuple[str, str, str]] = set()
        for i in range(1, threads + 1):
            for line in Path(f"{logs}.{i}").read_text().splitlines():
                if not line:
                    continue
                status, _, body = line.partition(" ")
                if status != "201":
                    raise RuntimeError(f"a POST under load answered {status}: {body[:300]}")
                got = json.loads(body)
                key = (got["org_id"], got["range"]["start"], got["range"]["end"])
                if key not in sent or key in seen:
                    raise RuntimeError(f"an answer under load for a range not sent once: {key}")
                seen.add(key)
                answered.append((sent[key], int(got["record_count"])))
    if summary["errors"] or summary["requests"] != len(answered):
        raise RuntimeError(f"wrk: {summary}, {len(answered)} responses logged")
    return Load(
        summary["requests"] / (summary["duration_us"] / 1e6),
        answered,
        summary["p50_us"] / 1e6,
        summary["p99_us"] / 1e6,
    )


def python_throughput(port: int, pools: list[list[Query]], seconds: float) -> Load:
    """The gevent raw-socket client in this process (--load-client python)."""
    rate, results = throughput(port, pools, seconds)
    latencies = [s for s, _, _ in results]
    return Load(rate, [(q, c) for _, q, c in results], pct(latencies, 50), pct(latencies, 99))


def pool_size(seconds: float, clients: int) -> int:
    """Fresh ranges per connection for 6,000 req/s over `seconds`: wrk must never run out."""
    return max(200, int(6000 * seconds / clients))


def checked_load(
    label: str,
    run_load: Callable[[float], Load],
    oracle: ExactCounts,
    pids: dict[str, int],
    args: argparse.Namespace,
    checked_as: str,
) -> tuple[Load, CpuMeter]:
    """A warm-up of `run_load` (at most 2 s), then the measured run of `--seconds` on a quiet
    machine (`quietly`), every count it answered held to the oracle (as `checked_as`)."""
    run_load(min(2.0, args.seconds))  # warm-up

    def attempt() -> Load:
        load = run_load(args.seconds)
        loaded = [q for q, _ in load.answered]
        want = [oracle.count(q.org, q.start, q.end) for q in loaded]
        check(checked_as, loaded, [c for _, c in load.answered], want)
        return load

    return quietly(label, attempt, pids, args)
