"""Drill 6: overload. Streams beyond SSE_MAX_STREAMS get a quick 503 problem; a 100 MiB
body is refused without being read (declared or chunked); a flood of 1,000 bad requests/s
does not slow valid requests by more than 2x (measured; a `drill`, run by `make drills`)."""

from __future__ import annotations

import multiprocessing
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import redis

from api.middleware import BASE_PATH
from config import Settings
from scripts.harness import Proc, start_api, start_projector, wait_until
from tests.integration.drills import api_count
from tests.integration.flood import flood, latencies
from tests.integration.projection import wait_projected
from tests.support.api_inputs import stream_path
from tests.support.streams import SseStream, open_streams, produce

MIB = 1024 * 1024
ROUNDS = 3  # quiet and flooded windows of 100 valid requests each
LIMIT = 20  # SSE_MAX_STREAMS of the API under test (one worker)


def test_streams_beyond_the_limit_get_503(
    drill_settings: Settings, topics: str, drill_redis: redis.Redis, procs: list[Proc]
) -> None:
    settings = replace(drill_settings, sse_max_streams=LIMIT)
    procs.append(start_projector(settings))
    procs.append(start_api(settings, WEB_CONCURRENCY="1"))
    port, path = settings.port, stream_path("org-drill-limit")
    held = [SseStream(port, path) for _ in range(LIMIT)]
    assert [s.status for s in held] == [200] * LIMIT
    for stream in held:
        next(stream.events())

    def knock(_: int) -> tuple[int, float, dict[str, str], dict[str, object]]:
        started = time.monotonic()
        stream = SseStream(port, path, timeout=10)
        status, headers = stream.status, stream.headers
        body = stream.problem() if status == 503 else {}
        stream.close()
        return status, time.monotonic() - started, headers, body

    with ThreadPoolExecutor(30) as pool:
        refused = list(pool.map(knock, range(30)))
    slowest = max(seconds for _, seconds, _, _ in refused)
    statuses = sorted({status for status, _, _, _ in refused})
    print(f"\n30 streams beyond {LIMIT}: all {statuses}, slowest {slowest:.3f} s")
    for status, _, headers, body in refused:
        assert status == 503
        assert headers["content-type"] == "application/problem+json"
        assert int(headers["retry-after"]) > 0
        assert body["status"] == 503
    assert slowest < 3.0
    # The held streams are still served, and a freed slot is taken again.
    produce(settings, "org-drill-limit", [1_700_000_000])
    wait_projected(settings, drill_redis, timeout=30)
    for stream in held:
        assert stream.read_until(lambda d: d["record_count"] == 1, timeout=10)
    for stream in held[:5]:
        stream.close()
    wait_until(lambda: open_streams(port) == LIMIT - 5, 15, "five slots to free up")
    again = [SseStream(port, path) for _ in range(5)]
    assert [s.status for s in again] == [200] * 5
    for stream in held[5:] + again:
        stream.close()


def _post_head(port: int, length_header: str, content_type: str) -> bytes:
    return (
        f"POST {BASE_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {content_type}\r\n{length_header}\r\n\r\n"
    ).encode()


def _read_status(sock: socket.socket) -> int:
    """The status code of the response arriving on `sock`."""
    head = b""
    while b"\r\n" not in head:
        data = sock.recv(4096)
        assert data, f"connection closed before a status line: {head!r}"
        head += data
    return int(head.split(b" ", 2)[1])


def _push(sock: socket.socket, seconds: float) -> int:
    """Bytes the server takes from us in `seconds` (or until it closes the connection)."""
    sock.settimeout(0.2)
    chunk, taken = b" " * (256 * 1024), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and taken < 100 * MIB:
        try:
            taken += sock.send(chunk)
        except TimeoutError:
            continue  # buffers full: the server is not reading
        except OSError:
            break  # closed: it will read nothing more
    return taken


@pytest.mark.parametrize(
    ("framing", "content_type", "expected"),
    [
        ("content-length", "application/json", 413),
        ("chunked", "application/json", 413),
        ("chunked", "text/plain", 415),  # refused before reading, whatever the size
    ],
)
def test_100_mib_body_is_refused_unread(
    drill_settings: Settings, procs: list[Proc], framing: str, content_type: str, expected: int
) -> None:
    procs.append(start_api(drill_settings, WEB_CONCURRENCY="1"))
    port = drill_settings.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started, sent = time.monotonic(), 0
        if framing == "content-length":
            head = _post_head(port, f"Content-Length: {100 * MIB}", content_type)
            sock.sendall(head + b"{" * 16384)
            sent = 16384
        else:
            sock.sendall(_post_head(port, "Transfer-Encoding: chunked", content_type))
            piece = b"1000\r\n" + b" " * 4096 + b"\r\n"
            while sent < 100 * MIB and not select.select([sock], [], [], 0.002)[0]:
                sock.sendall(piece)
                sent += 4096
        status = _read_status(sock)
        answered = time.monotonic() - started
        after = _push(sock, 3.0)
    print(
        f"\n100 MiB {framing} {content_type}: {status} after {answered * 1000:.0f} ms and "
        f"{sent // 1024} KiB sent; the server took {after // 1024} KiB more after answering"
    )
    assert status == expected
    assert answered < 2.0
    assert sent < MIB
    assert after < 16 * MIB, "the server went on reading the refused body"


@pytest.mark.drill
def test_bad_input_flood_does_not_slow_valid_requests(
    drill_settings: Settings, drill_redis: redis.Redis, procs: list[Proc]
) -> None:
    procs.append(start_api(drill_settings, WEB_CONCURRENCY="2"))
    port = drill_settings.port
    api_count(port, "org-drill-flood")
    latencies(port, 60, rate=30)  # warm both workers and their pools
    ctx = multiprocessing.get_context("spawn")
    results, on, stop = ctx.SimpleQueue(), ctx.Event(), ctx.Event()
    flooder = ctx.Process(target=flood, args=(port, 1000, on, stop, results), daemon=True)
    flooder.start()
    alone: list[float] = []
    loaded: list[float] = []
    flooding = 0.0
    try:
        # Alternate quiet and flooded windows, so a change in the machine's other load
        # between them does not pass for the flood's effect.
        for _ in range(ROUNDS):
            alone += latencies(port, 100, rate=30)
            on.set()
            started = time.monotonic()
            loaded += latencies(port, 100, rate=30)
            on.clear()
            flooding += time.monotonic() - started
    finally:
        stop.set()
        flooder.join(timeout=60)
        if flooder.is_alive():
            flooder.kill()
    statuses = results.get()
    achieved = sum(statuses.values()) / flooding

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[int(len(values) * q)] * 1000

    ratio = pct(loaded, 0.5) / pct(alone, 0.5)
    print(
        f"\nvalid POST count alone: p50 {pct(alone, 0.5):.1f} ms p99 {pct(alone, 0.99):.1f} ms; "
        f"with {achieved:.0f} bad requests/s: p50 {pct(loaded, 0.5):.1f} ms "
        f"p99 {pct(loaded, 0.99):.1f} ms (p50 x{ratio:.2f}); flood statuses {statuses}"
    )
    assert all(code.isdigit() and 400 <= int(code) < 500 for code in statuses), statuses
    assert achieved >= 900, f"the flood reached only {achieved:.0f}/s"
    assert ratio <= 2.0
