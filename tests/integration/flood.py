"""Load for the overload drill: a flood of bad requests from a process of its own, and the
latency of valid requests sent one at a time."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from typing import Any

from api.middleware import BASE_PATH
from tests.integration.drills import call
from tests.support.api_inputs import count_body

THREADS = 20
_GOOD = count_body("org-drill-flood", 1_700_000_000, 1_800_000_000)
# (method, path, body, content type): each one a client error of another kind.
BAD = [
    ("POST", BASE_PATH, b'{"org_id": "org-1", "range": {', "application/json"),  # 400
    ("POST", BASE_PATH, json.dumps({**_GOOD, "colour": "red"}).encode(), "application/json"),
    ("POST", BASE_PATH, json.dumps(_GOOD).encode(), "text/plain"),  # 415
    ("GET", f"{BASE_PATH}?limit=many", None, None),  # 400
    ("GET", f"{BASE_PATH}/stream?org_id=-bad&start=x&end=y", None, None),  # 422
    ("POST", BASE_PATH, json.dumps(count_body("org-1", 20, 10)).encode(), "application/json"),
]


def _raw(port: int, method: str, path: str, body: bytes | None, ctype: str | None) -> bytes:
    """One HTTP/1.1 keep-alive request, encoded once (the flood must cost its sender little)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + (body or b"")


def _answer(sock: socket.socket, buffer: bytearray) -> tuple[str, bool]:
    """Read one response: its status and whether the server closes the connection."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed before a response")
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end]).lower()
    length = (
        int(head.split(b"content-length:")[1].split(b"\r\n")[0])
        if b"content-length:" in head
        else 0
    )
    while len(buffer) < end + length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed in a response body")
        buffer += data
    del buffer[: end + length]
    return head.split(b" ", 2)[1].decode(), b"connection: close" in head


def _hammer(port: int, interval: float, on: Any, stop: Any, seen: Counter[str]) -> None:
    """One keep-alive client sending bad requests every `interval` s while `on`, until `stop`."""
    requests = [_raw(port, *bad) for bad in BAD]
    sock, buffer = None, bytearray()
    next_at, i = time.monotonic(), 0
    while not stop.is_set():
        if not on.is_set():
            on.wait(0.1)
            next_at = time.monotonic()
            continue
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                buffer = bytearray()
            sock.sendall(requests[i % len(requests)])
            status, close = _answer(sock, buffer)
            seen[status] += 1
        except OSError as exc:
            seen[type(exc).__name__] += 1
            close = True
        if close and sock is not None:
            sock.close()
            sock = None
        i += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))  # pacing
    if sock is not None:
        sock.close()


def flood(port: int, rate: float, on: Any, stop: Any, results: Any) -> None:
    """Send `rate` bad requests/s while `on` is set, until `stop`; put the statuses seen."""
    counters: list[Counter[str]] = [Counter() for _ in range(THREADS)]
    threads = [
        threading.Thread(target=_hammer, args=(port, THREADS / rate, on, stop, seen))
        for seen in counters
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(dict(sum(counters, Counter())))


def latencies(port: int, n: int, rate: float) -> list[float]:
    """Seconds taken by each of `n` valid count requests, sent one at a time at `rate`/s."""
    found = []
    next_at = time.monotonic()
    for _ in range(n):
        answer = call(port, "POST", BASE_PATH, _GOOD)
        assert answer.status in (200, 201), answer
        found.append(answer.seconds)
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))  # pacing
    return found
