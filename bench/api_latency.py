"""POST-count latency per span and requests/s of the API, against PostgreSQL on the same events.

    .venv/bin/python -m bench.api_latency [--events 2000000] [--orgs 5] [--requests 500]
                                          [--clients 16] [--seconds 10] [--quick]
                                          [--quiet 25] [--quiet-wait 300] [--attempts 3]

Publishes `--events` distinct events (plus 1 % producer retries) for `--orgs` orgs spread
over 12 years with `events.produce`, projects them with the real projector
(`python -m projector`) and serves them with the real API (`python -m api`: gunicorn,
gevent workers, WEB_CONCURRENCY=2, LOG_LEVEL=WARNING, bound to 127.0.0.1). A temporary
PostgreSQL (bench/pg.py) holds the same distinct (org_id, second) pairs in `records` with a
btree index on (org_id, occurred_at).

Latency, concurrency 1: `--requests` ranges per span (1 s, 1 day, 90 days, 1 year,
10 years) at random orgs and positions, shuffled together, each POSTed once over one
keep-alive connection; the same ranges then go to Redis directly (the count round trip the
API makes, without HTTP) and to PostgreSQL (`COUNT(*) ... BETWEEN`, prepared). Every API
count must equal PostgreSQL's and an in-memory oracle's, or the bench fails.
Throughput: `--clients` greenlets (gevent sockets, one keep-alive connection each, in this
process) POST fresh ranges of mixed spans for `--seconds`; their counts are checked too.
The machine has 2 cores, shared with whatever else runs: before each measured phase the
bench waits (at most `--quiet-wait` s) until other processes use <= `--quiet` % of a core;
a phase during which they used over twice that is run again (at most `--attempts` runs,
fresh ranges for the API; the least disturbed run is kept, its counts checked like all).
It reports the CPU that other work used during each phase and per process under load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gevent
import gevent.socket

from bench.common import bench_settings, cleanup, machine, table
from bench.cpu import CpuMeter, quietly
from bench.pg import PgServer, load_records
from config import Settings
from events.connections import describe_kafka, describe_redis
from events.produce import Plan, Summary, produce
from events.redis_client import Client, connect
from events.schema import format_utc
from events.topics import end_offsets
from projector.buckets import MAX_SECOND
from projector.store import CounterStore
from scripts.harness import Proc, free_port, start_api, start_projector, wait_until

DAY = 86_400
SPANS = (
    ("1 s", 1),
    ("1 day", DAY),
    ("90 days", 90 * DAY),
    ("1 year", 365 * DAY),
    ("10 years", 3652 * DAY),
)
DATA_YEARS = 12
PATH = "/api/v1/period-record-counts"
SQL = "SELECT COUNT(*) FROM records WHERE org_id = %s AND occurred_at BETWEEN %s AND %s"
TARGET_P99_MS, TARGET_RATIO, TARGET_RPS = 5.0, 50.0, 1500.0


@dataclass(frozen=True)
class Query:
    """One range to count: span name, org, inclusive whole-second bounds, the POST body."""

    span: str
    org: str
    start: int
    end: int

    def body(self) -> bytes:
        """The POST body."""
        window = {"start": format_utc(self.start), "end": format_utc(self.end)}
        return json.dumps({"org_id": self.org, "range": window}).encode()


class HttpClient:
    """A minimal keep-alive HTTP/1.1 client (one connection; JSON POSTs), cheap on CPU."""

    def __init__(self, port: int, sockets: Any = socket) -> None:
        self._port, self._sockets = port, sockets
        self._sock: Any = None
        self._buf = b""

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body); reconnects once when the server closed an idle connection."""
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        return self._send(request)

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of a GET (path with its query string)."""
        return self._send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    def _send(self, request: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self._sock is None:
                self._sock = self._sockets.create_connection(("127.0.0.1", self._port), 10)
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._sock.sendall(request)
                return self._response()
            except (ConnectionError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _recv(self, buf: bytes) -> bytes:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return buf + chunk

    def _response(self) -> tuple[int, bytes]:
        buf = self._buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf = self._recv(buf)
        lines = buf[:end].decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        need = end + 4 + int(headers["content-length"])  # our API never sends chunked bodies
        while len(buf) < need:
            buf = self._recv(buf)
        self._buf = buf[need:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(lines[0].split(" ", 2)[1]), buf[end + 4 : need]

    def close(self) -> None:
        """Close the connection (the next POST opens a new one)."""
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buf = None, b""


class Oracle:
    """Exact counts by bisection over each org's sorted event seconds."""

    def __init__(self, events: Sequence[tuple[str, int]]) -> None:
        self.seconds: dict[str, list[int]] = {}
        for org, second in events:
            self.seconds.setdefault(org, []).append(second)
        for values in self.seconds.values():
            values.sort()

    def count(self, org: str, start: int, end: int) -> int:
        """Events of org with start <= second <= end."""
        values = self.seconds.get(org, [])
        return bisect_right(values, end) - bisect_left(values, start)


def make_queries(rng: random.Random, orgs: Sequence[str], lo: int, hi: int, n: int) -> list[Query]:
    """`n` ranges per span at random orgs and positions inside [lo, hi], shuffled together."""
    queries = []
    for name, span in SPANS:
        for _ in range(n):
            start = rng.randint(lo, hi - span + 1)
            queries.append(Query(name, rng.choice(orgs), start, start + span - 1))
    rng.shuffle(queries)
    return queries


def pct(values: Sequence[float], q: int) -> float:
    """The q-th percentile (inclusive method)."""
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def timed(queries: Sequence[Query], call: Callable[[Query], int]) -> list[tuple[float, int]]:
    """(seconds, count) of `call` per query, one after the other."""
    out = []
    clock = time.perf_counter
    for q in queries:
        started = clock()
        count = call(q)
        out.append((clock() - started, count))
    return out


def api_call(client: HttpClient) -> Callable[[Query], int]:
    """POST one range; the record_count, failing on any status but 200/201."""

    def call(q: Query) -> int:
        status, body = client.post(PATH, q.body())
        if status not in (200, 201):
            raise RuntimeError(f"POST {q} answered {status}: {body[:300]!r}")
        return int(json.loads(body)["record_count"])

    return call


def pg_call(conn: Any) -> Callable[[Query], int]:
    """COUNT(*) of one range in PostgreSQL (prepared; whole-second events, inclusive end)."""
    cur = conn.cursor()
    epoch, slack = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=999_999)

    def call(q: Query) -> int:
        start, end = epoch + timedelta(seconds=q.start), epoch + timedelta(seconds=q.end)
        cur.execute(SQL, (q.org, start, end + slack), prepare=True)
        return int(cur.fetchone()[0])

    return call


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


@dataclass
class Load:
    """What a throughput run measured: req/s, each answered range and its count, latency."""

    rate: float
    answered: list[tuple[Query, int]]
    p50: float
    p99: float


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


def publish(settings: Settings, events: int, orgs: int, seed: int) -> tuple[Plan, Summary]:
    """Publish `events` distinct events (+1 % retries) over DATA_YEARS years ending now."""
    dup = 0.01
    count = round(events / (1 - dup))
    while Plan(("o",), count, 0, 0, duplicate_ratio=dup).quotas[0] < events:
        count += 1
    end_ms = int(time.time()) * 1000
    plan = Plan(
        orgs=tuple(f"org-bench-{i}" for i in range(1, orgs + 1)),
        count=count,
        start_ms=end_ms - int(DATA_YEARS * 365.25 * DAY * 1000),
        end_ms=end_ms,
        duplicate_ratio=dup,
        seed=seed,
    )
    summary = produce(
        plan,
        settings,
        settings.record_events_topic,
        workers=2,
        keep_events=True,
    )
    return plan, summary


def check(label: str, queries: Sequence[Query], got: Sequence[int], want: Sequence[int]) -> None:
    """Fail loudly when any count differs."""
    bad = [(q, g, w) for q, g, w in zip(queries, got, want, strict=True) if g != w]
    if bad:
        lines = "\n".join(f"  {q}: {label} {g}, expected {w}" for q, g, w in bad[:10])
        raise SystemExit(f"COUNT MISMATCH: {len(bad)} of {len(queries)} ranges\n{lines}")


def our_pids(api: Proc, projector: Proc, client: Client, pg: PgServer) -> dict[str, int]:
    """The process trees that belong to this run (the API's workers one by one)."""
    children = Path(f"/proc/{api.pid}/task/{api.pid}/children").read_text().split()
    pids = {f"API worker {i + 1}": int(pid) for i, pid in enumerate(children)}
    pids["Redis"] = int(client.info("server")["process_id"])
    pids["projector (idle)"] = projector.pid
    pids["PostgreSQL"] = pg.pid or 0
    # Its own time and that of the children it waited for (wrk): the rest are still running.
    pids["load client (wrk, or this process)"] = -1
    return pids


def load_run(
    port: int, pids: dict[str, int], oracle: Oracle, plan: Plan, args: argparse.Namespace
) -> tuple[Load, dict[str, float]]:
    """Warm up, then the measured throughput run with CPU use per process (% of one core)."""
    # Enough fresh ranges per connection for 6,000 req/s: wrk must never run out.
    per_client = max(200, int(6000 * args.seconds / args.clients))
    warm_seconds = min(2.0, args.seconds)
    seeds = iter(range(20_000, 10**9, 1000))
    orgs, lo, hi = plan.orgs, plan.start_ms // 1000, plan.end_ms // 1000

    def pools(size: int) -> list[list[Query]]:
        seed = next(seeds)
        return [
            make_queries(random.Random(seed + i), orgs, lo, hi, size // len(SPANS) + 1)
            for i in range(args.clients)
        ]

    def run_load(size: int, seconds: float) -> Load:
        if args.load_client == "wrk":
            return wrk_throughput(port, pools(size), seconds, args.wrk_threads)
        return python_throughput(port, pools(size), seconds)

    def attempt() -> Load:
        load = run_load(per_client, args.seconds)
        loaded = [q for q, _ in load.answered]
        want = [oracle.count(q.org, q.start, q.end) for q in loaded]
        check("API under load", loaded, [c for _, c in load.answered], want)
        return load

    run_load(max(200, int(6000 * warm_seconds / args.clients)), warm_seconds)  # warm-up
    load, meter = quietly("throughput", attempt, pids, args)
    return load, meter.percent


def run(args: argparse.Namespace) -> None:
    """Set everything up, measure, check every count, print the tables and verdicts."""
    print(f"# api_latency on {machine()}")
    print(f"command: {' '.join(['python -m bench.api_latency', *sys.argv[1:]])}")
    settings = bench_settings("api-latency")
    settings = replace(settings, port=free_port(), log_level="WARNING", web_concurrency=2)
    print(f"kafka {describe_kafka(settings)}, redis {describe_redis(settings)}")
    pg, procs = PgServer(), []
    client = connect(settings)
    store = CounterStore(client, settings.redis_key_prefix, settings.record_events_topic)
    try:
        pg.start()
        print(f"PostgreSQL {pg.version} on 127.0.0.1:{pg.port} (pid {pg.pid})")
        plan, summary = publish(settings, args.events, args.orgs, args.seed)
        events = summary.events or []
        print(
            f"published {summary.sent:,} messages ({len(events):,} distinct events, "
            f"{summary.duplicates:,} retries) for {len(plan.orgs)} orgs over {DATA_YEARS} years "
            f"in {summary.elapsed_s:.1f}s"
        )
        ends = end_offsets(settings, settings.record_events_topic)
        started = time.perf_counter()
        procs.append(start_projector(settings))
        with pg.connect() as conn:
            rows = load_records(conn, events)
        print(
            f"PostgreSQL: {rows:,} rows copied, indexed, vacuumed (all pages all-visible) "
            f"in {time.perf_counter() - started:.1f}s"
        )
        wait_until(
            lambda: all(store.positions().get(p, 0) >= e for p, e in ends.items() if e),
            3600,
            "projector to catch up",
            interval=0.2,
        )
        print(f"projected in {time.perf_counter() - started:.1f}s")
        for org, n in sorted(summary.valid.items()):
            total = store.count(org, 0, MAX_SECOND)
            if total != n:
                raise SystemExit(f"COUNT MISMATCH: {org} has {total} in Redis, {n} published")
        procs.append(start_api(settings))
        oracle = Oracle(events)
        summary.events = events = []  # the oracle holds them now
        report(measure(args, settings, pg, client, oracle, plan, procs), args)
    finally:
        for proc in reversed(procs):
            proc.stop()
        pg.stop()
        client.close()
        cleanup(settings)


@dataclass
class Results:
    """What one run measured."""

    queries: list[Query]
    want: list[int]
    api: list[tuple[float, int]]
    direct: list[tuple[float, int]]
    sql: list[tuple[float, int]]
    load: Load | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    other: dict[str, float] = field(default_factory=dict)


def measure(
    args: argparse.Namespace,
    settings: Settings,
    pg: PgServer,
    client: Client,
    oracle: Oracle,
    plan: Plan,
    procs: list[Proc],
) -> Results:
    """The measurements proper, on running services; fails loudly on any wrong count."""
    store = CounterStore(client, settings.redis_key_prefix, settings.record_events_topic)
    rng = random.Random(args.seed)
    lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
    warm = make_queries(rng, plan.orgs, lo, hi, 20)
    pids = our_pids(procs[-1], procs[0], client, pg)
    other: dict[str, float] = {}
    http = HttpClient(settings.port)
    timed(warm, api_call(http))

    def api_attempt() -> tuple[list[Query], list[tuple[float, int]]]:
        qs = make_queries(rng, plan.orgs, lo, hi, args.requests)  # fresh: every POST creates
        out = timed(qs, api_call(http))
        check("API", qs, [c for _, c in out], [oracle.count(q.org, q.start, q.end) for q in qs])
        return qs, out

    (queries, api), meter = quietly("API", api_attempt, pids, args)
    http.close()
    other["API"] = meter.other
    want = [oracle.count(q.org, q.start, q.end) for q in queries]

    def phase(label: str, call: Callable[[Query], int]) -> list[tuple[float, int]]:
        timed(warm, call)
        out, meter = quietly(label, lambda: timed(queries, call), pids, args)
        other[label] = meter.other
        return out

    def direct_count(q: Query) -> int:
        return store.count_and_caught_up(q.org, q.start, q.end)[0]

    direct = phase("Redis count", direct_count)
    check("Redis count", queries, [c for _, c in direct], want)
    with pg.connect() as conn:
        for org in plan.orgs:  # read each org's whole index once: a warm cache
            conn.execute("SELECT COUNT(*) FROM records WHERE org_id = %s", (org,))
        sql = phase("PostgreSQL", pg_call(conn))
    check("PostgreSQL", queries, [c for _, c in sql], want)
    print(f"all {len(queries):,} ranges: API count == PostgreSQL == Redis direct == oracle")
    results = Results(queries, want, api, direct, sql, other=other)
    results.load, results.cpu = load_run(settings.port, pids, oracle, plan, args)
    other["throughput"] = results.cpu[CpuMeter.OTHER]
    print(f"all {len(results.load.answered):,} ranges under load: API count == oracle\n")
    return results


def ms(values: Sequence[float], q: int) -> float:
    """The q-th percentile in milliseconds."""
    return 1000 * pct(values, q)


def report(r: Results, args: argparse.Namespace) -> None:
    """Print the figures, the ratios and a PASS/MISS line per target."""
    rows, worst, ratio_year = [], (0.0, ""), 0.0
    for name, _ in SPANS:
        idx = [i for i, q in enumerate(r.queries) if q.span == name]
        a, d, p = ([t[i][0] for i in idx] for t in (r.api, r.direct, r.sql))
        mean = sum(r.want[i] for i in idx) / len(idx)
        rows.append(
            [
                name,
                f"{mean:,.0f}",
                f"{ms(a, 50):.2f}",
                f"{ms(a, 99):.2f}",
                f"{ms(d, 50):.2f}",
                f"{ms(p, 50):.2f}",
                f"{ms(p, 99):.2f}",
                f"{pct(p, 50) / pct(a, 50):.1f}x",
                f"{pct(p, 99) / pct(a, 99):.1f}x",
                f"{pct(p, 50) / pct(d, 50):.1f}x",
            ]
        )
        worst = max(worst, (ms(a, 99), name))
        if name == "1 year":
            ratio_year = pct(p, 50) / pct(a, 50)
    headers = ["span", "mean count", "API p50", "API p99", "Redis count p50", "PG p50"]
    headers += ["PG p99", "PG/API p50", "PG/API p99", "PG/Redis p50"]
    print(f"Latency at concurrency 1, {args.requests} ranges per span (ms):\n")
    print(table(headers, rows))
    print(
        "\nother work on the machine (% of one core) during each phase: "
        + ", ".join(f"{k} {v:.0f}" for k, v in r.other.items())
        + "\n"
    )
    load = r.load
    assert load is not None
    print(
        f"Throughput, {args.clients} clients ({args.load_client}), mixed spans, "
        f"{args.seconds:.0f} s: {load.rate:,.0f} req/s ({len(load.answered):,} requests; "
        f"latency p50 {1000 * load.p50:.2f} ms, p99 {1000 * load.p99:.2f} ms)\n"
    )
    print(table(["process", "CPU % of one core"], [[k, f"{v:.0f}"] for k, v in r.cpu.items()]))
    verdicts = [
        [
            f"p99 <= {TARGET_P99_MS:.0f} ms at every span",
            f"worst {worst[0]:.2f} ms ({worst[1]})",
            "PASS" if worst[0] <= TARGET_P99_MS else "MISS",
        ],
        [
            f">= {TARGET_RATIO:.0f}x faster than PostgreSQL, 1 year (p50)",
            f"{ratio_year:.1f}x",
            "PASS" if ratio_year >= TARGET_RATIO else "MISS",
        ],
        [
            f">= {TARGET_RPS:,.0f} req/s at {args.clients} clients",
            f"{load.rate:,.0f} req/s",
            "PASS" if load.rate >= TARGET_RPS else "MISS",
        ],
    ]
    print()
    print(table(["target", "measured", "verdict"], verdicts))


def add_quiet_flags(parser: argparse.ArgumentParser, wait: float = 300, attempts: int = 3) -> None:
    """--quiet, --quiet-wait and --attempts, which `quietly` reads."""
    parser.add_argument(
        "--quiet", type=float, default=25.0, help="most %% of a core other work may use"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=wait, help="longest wait for that, per phase (s)"
    )
    parser.add_argument(
        "--attempts", type=int, default=attempts, help="most runs of a phase that others disturbed"
    )


def main() -> None:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="distinct events")
    parser.add_argument("--orgs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500, help="ranges per span")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput run length")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--load-client",
        choices=("wrk", "python"),
        default="wrk",
        help="throughput load: wrk (installed with apt-get if missing) or the gevent client",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (-t)")
    add_quiet_flags(parser)
    parser.add_argument("--quick", action="store_true", help="smoke run: 50k events, 50 ranges")
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="single Redis vs 3-master cluster side by side (bench/api_cluster.py)",
    )
    parser.add_argument(
        "--busy-org",
        action="store_true",
        help="one busy org, our API vs the same service on PostgreSQL (bench/busy_org.py)",
    )
    parser.add_argument("--busy-events", type=int, default=5_000_000, help="with --busy-org")
    parser.add_argument("--quiet-events", type=int, default=10_000, help="per quiet org, ditto")
    args = parser.parse_args()
    if args.quick:
        args.events, args.requests, args.seconds = 50_000, 50, 3.0
    if args.redis_cluster:
        from bench import api_cluster

        api_cluster.run(args)
        return
    if args.busy_org:
        from bench import busy_org

        busy_org.run(args)
        return
    run(args)


if __name__ == "__main__":
    main()
