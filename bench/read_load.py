"""Reads while something else goes on: client processes POSTing random ranges (1 s to 10
years) until stopped, every request's start, duration and answer kept, and the requests made
wholly inside a window of wall-clock time picked out afterwards (bench/rebuild.py)."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import random
import time
from typing import Any

from bench.ranges import PATH, SPANS
from events.produce import Plan
from events.schema import format_utc


def _reader(
    port: int, stop: Any, results: Any, seed: int, orgs: list[str], lo: int, hi: int
) -> None:
    """One client process: POSTs until `stop` is set, then puts [(started, seconds, answer)]
    on `results`."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    while not stop.is_set():
        org = rng.choice(orgs)
        span = rng.choice(SPANS)[1]
        start = max(0, rng.randrange(lo - span, hi))
        end = start + span - 1
        body = json.dumps(
            {"org_id": org, "range": {"start": format_utc(start), "end": format_utc(end)}}
        )
        began, wall = time.perf_counter(), time.time()
        conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        seconds = time.perf_counter() - began
        if response.status not in (200, 201):
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        out.append((wall, seconds, (org, start, end, int(json.loads(data)["record_count"]))))
    conn.close()
    results.put(out)


class ReadLoad:
    """`clients` processes POSTing random ranges until stopped (started once: a process
    start costs more CPU than seconds of requests, so they are not restarted per phase)."""

    def __init__(self, port: int, clients: int, plan: Plan) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._results = ctx.Queue()
        lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
        self._procs = [
            ctx.Process(
                target=_reader,
                args=(port, self._stop, self._results, 100 + n, list(plan.orgs), lo, hi),
                daemon=True,
            )
            for n in range(clients)
        ]
        for proc in self._procs:
            proc.start()

    def stop(self) -> list[Any]:
        """Every request made: (wall-clock start, seconds, answer)."""
        self._stop.set()
        results = [x for _ in self._procs for x in self._results.get(timeout=120)]
        for proc in self._procs:
            proc.join(timeout=30)
        return results


def window(requests: list[Any], start: float, end: float) -> tuple[list[float], list[Any]]:
    """Latencies and answers of the requests made wholly within [start, end] (wall clock)."""
    inside = [r for r in requests if start <= r[0] and r[0] + r[1] <= end]
    return [r[1] for r in inside], [r[2] for r in inside]
