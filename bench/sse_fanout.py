"""SSE fan-out: N concurrent streams on one org, events produced at a steady rate.

    .venv/bin/python -m bench.sse_fanout [--steps 100,250,500,1000,1500,2000] [--rate 5]
                                         [--seconds 10] [--workers 2] [--quick]

Starts the real projector (`python -m projector`) and the real API (`python -m api`:
gunicorn, gevent workers) on a fresh topic and key prefix. For each N, a separate client
process opens N streams on one fresh org (raw sockets, one epoll loop, the tests' SSE parser),
waits for every first event, then this process publishes `rate` events/s for `seconds`.
An event cannot carry its produce time, so the delay of the k-th event on one client is the
time it first sees record_count >= k minus the time the k-th event was handed to the
producer. Prints p50/p99/max over every (client, k) and the largest N with p99 <= 1 s.
Loopback only; every wait is bounded. `--quick`, a smoke run: 10 and 50 streams, 2 s each.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import re
import resource
import selectors
import socket
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from urllib.parse import urlencode

from bench.common import bench_settings, cleanup, machine, table
from config import Settings
from events.publisher import Publisher
from events.schema import RecordCreated, format_utc
from scripts.harness import free_port, start_api, start_projector
from tests.support.sse import SseParser

COUNT = re.compile(r'"record_count":([0-9]+)')
READY_TIMEOUT = 120.0
DRAIN_TIMEOUT = 30.0
TARGET_P99 = 1.0


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Client:
    """One stream's socket and what it has seen: receipt time per record_count reached."""

    def __init__(self, sock: socket.socket, total: int) -> None:
        self.sock = sock
        # Fed the raw response: the status line, headers and chunk sizes are lines of no
        # field it knows, so it passes them over.
        self.parser = SseParser()
        self.count = -1
        self.receipts = [math.nan] * (total + 1)

    def feed(self, data: bytes, now: float) -> None:
        """Take bytes in; note the time each new record_count is first seen."""
        for block in self.parser.feed(data):
            found = COUNT.search(block.data) if block.data is not None else None
            if found is None:
                continue
            count = int(found.group(1))
            for k in range(max(self.count, 0), min(count, len(self.receipts) - 1) + 1):
                if math.isnan(self.receipts[k]):
                    self.receipts[k] = now
            self.count = max(self.count, count)


def run_clients(
    port: int, path: str, n: int, total: int, produce_seconds: float, conn: Connection
) -> None:
    """Client process: open n streams, say how many had their first event, then report every
    client's receipts once all reached `total` (or the drain timeout passed)."""
    raise_fd_limit()
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    selector = selectors.DefaultSelector()
    clients = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(request.encode())
        sock.setblocking(False)
        client = Client(sock, total)
        selector.register(sock, selectors.EVENT_READ, client)
        clients.append(client)

    def pump(until: float, done: object) -> None:
        while time.monotonic() < until and not done():  # type: ignore[operator]
            for key, _ in selector.select(timeout=0.2):
                client = key.data
                try:
                    data = client.sock.recv(65536)
                except BlockingIOError:
                    continue
                if data:
                    client.feed(data, time.time())
                else:
                    selector.unregister(client.sock)

    pump(time.monotonic() + READY_TIMEOUT, lambda: all(c.count >= 0 for c in clients))
    conn.send(sum(1 for c in clients if c.count >= 0))
    # Read all along while the events are produced, until every client has seen them all.
    deadline = time.monotonic() + produce_seconds + DRAIN_TIMEOUT
    pump(deadline, lambda: all(c.count >= total for c in clients))
    conn.send([c.receipts[1:] for c in clients])
    for client in clients:
        client.sock.close()


def produce_steadily(
    settings: Settings, org_id: str, rate: float, total: int, second: int
) -> list[float]:
    """Publish `total` events at `rate`/s; the wall time each was handed to the producer."""
    times = []
    with Publisher(settings, settings.record_events_topic, linger_ms=0) as publisher:
        started = time.monotonic()
        for k in range(total):
            time.sleep(max(0.0, started + k / rate - time.monotonic()))
            times.append(time.time())
            event_id = uuid.uuid4().hex
            when = datetime.fromtimestamp(second, UTC)
            publisher.publish(RecordCreated(event_id, org_id, f"rec-{event_id}", when))
    return times


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of sorted `values`."""
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def step(settings: Settings, n: int, rate: float, seconds: float) -> list[object]:
    """One row: N streams, `rate` events/s for `seconds`."""
    total = max(1, int(rate * seconds))
    org_id = f"org-bench-{n}-{uuid.uuid4().hex[:6]}"
    now = int(time.time())
    query = urlencode(
        {"org_id": org_id, "start": format_utc(now - 86400), "end": format_utc(now + 86400)}
    )
    path = f"/api/v1/period-record-counts/stream?{query}"
    parent, child = mp.Pipe()
    proc = mp.Process(
        target=run_clients, args=(settings.port, path, n, total, seconds + 1.0, child)
    )
    proc.start()
    try:
        if not parent.poll(READY_TIMEOUT + 30):
            raise RuntimeError(f"{n} streams did not open in time")
        ready = parent.recv()
        time.sleep(1.0)
        produced = produce_steadily(settings, org_id, rate, total, now)
        if not parent.poll(DRAIN_TIMEOUT + 30):
            raise RuntimeError("clients did not report in time")
        receipts: list[list[float]] = parent.recv()
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    delays = sorted(
        r - p for client in receipts for r, p in zip(client, produced, strict=True) if r == r
    )
    missing = sum(1 for client in receipts for r in client if r != r)
    if not delays:
        return [n, ready, total, "-", "-", "-", missing]
    return [
        n,
        ready,
        total,
        round(percentile(delays, 0.50) * 1000),
        round(percentile(delays, 0.99) * 1000),
        round(delays[-1] * 1000),
        missing,
    ]


def main() -> None:
    """Run every step and print the table and the largest N with p99 <= 1 s."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="100,250,500,1000,1500,2000")
    parser.add_argument("--rate", type=float, default=5.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 and 50 streams, 2 s")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.seconds = "10,50", min(args.seconds, 2.0)
    steps = [int(s) for s in args.steps.split(",")]
    limit = raise_fd_limit()
    settings = bench_settings("sse", partitions=3)
    # Any worker may accept most of the connections: each must be allowed all of them.
    settings = replace(
        settings,
        port=free_port(),
        web_concurrency=args.workers,
        sse_max_streams=max(steps) + 10,
        log_level="WARNING",
    )
    print(f"# sse_fanout on {machine()} · {args.workers} API workers · nofile {limit}")
    projector = start_projector(settings)
    api = start_api(settings)
    rows = []
    try:
        for n in steps:
            rows.append(step(settings, n, args.rate, args.seconds))
            print(json.dumps(dict(zip(HEADERS, rows[-1], strict=True))), flush=True)
            time.sleep(3.0)  # let dropped streams go before the next step
    finally:
        api.stop()
        projector.stop()
        cleanup(settings)
    print(table(HEADERS, rows))
    good = [
        row[0]
        for row in rows
        if isinstance(row[4], int) and row[4] <= TARGET_P99 * 1000 and row[6] == 0
    ]
    print(f"largest N with p99 <= {TARGET_P99:g} s: {max(good) if good else 'none'}")


HEADERS = ["streams", "opened", "events", "p50 ms", "p99 ms", "max ms", "missed"]

if __name__ == "__main__":
    main()
