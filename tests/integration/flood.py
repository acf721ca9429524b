"""Load for the overload drill: a flood of bad requests from a process of its own, and the
latency of valid requests sent one at a time."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from typing import Any

from api.middleware import BASE_PATH
from tests.integration.drills import call, count_body

THREADS = 10
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


def _hammer(port: int, interval: float, deadline: float, seen: Counter[str]) -> None:
    """One keep-alive client sending bad requests every `interval` seconds until `deadline`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    next_at, i = time.monotonic(), 0
    while time.monotonic() < deadline:
        method, path, body, ctype = BAD[i % len(BAD)]
        i += 1
        try:
            conn.request(method, path, body=body, headers={"Content-Type": ctype} if ctype else {})
            response = conn.getresponse()
            response.read()
            seen[str(response.status)] += 1
        except (OSError, http.client.HTTPException) as exc:
            seen[type(exc).__name__] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))  # pacing
    conn.close()


def flood(port: int, rate: float, seconds: float, ready: Any, results: Any) -> None:
    """Send `rate` bad requests/s for `seconds`; put (statuses, achieved rate) on `results`."""
    counters: list[Counter[str]] = [Counter() for _ in range(THREADS)]
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(target=_hammer, args=(port, THREADS / rate, deadline, seen))
        for seen in counters
    ]
    for thread in threads:
        thread.start()
    ready.set()
    for thread in threads:
        thread.join()
    seen = sum(counters, Counter())
    results.put((dict(seen), seen.total() / (time.monotonic() - started)))


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
