"""Helpers of the stream tests: an SSE reader, producing, scraping the open-streams gauge."""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import redis

from config import Settings
from events.publisher import Publisher
from events.schema import RecordCreated
from scripts.harness import Proc, start_api
from tests.support.sse import Block, SseParser

GAUGE = re.compile(r"^prc_api_open_streams(?:\{[^}]*\})? ([0-9.e+-]+)$", re.MULTILINE)


class SseStream:
    """A blocking SSE client over http.client: status, headers, then blocks as they come."""

    def __init__(
        self, port: int, path: str, last_event_id: str | None = None, timeout: float = 15.0
    ) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}

    def problem(self) -> dict[str, object]:
        """The body of a refused stream."""
        value = json.loads(self.response.read())
        assert isinstance(value, dict)
        return value

    def blocks(self) -> Iterator[Block]:
        """Every block (events and comment-only blocks) until the server ends the stream."""
        parser = SseParser()
        while True:
            raw = self.response.readline()
            if not raw:
                return
            yield from parser.feed(raw)

    def events(self) -> Iterator[Block]:
        """Only the blocks carrying data."""
        return (block for block in self.blocks() if block.data is not None)

    def read_until(
        self, predicate: Callable[[dict[str, object]], bool], timeout: float = 60.0
    ) -> list[Block]:
        """Events until `predicate(data)` holds for one (included); fails after `timeout`."""
        deadline = time.monotonic() + timeout
        seen: list[Block] = []
        for block in self.blocks():  # keep-alives too, so the deadline is checked when idle
            assert time.monotonic() < deadline, f"timed out; events so far: {seen}"
            if block.data is None:
                continue
            seen.append(block)
            if predicate(block.json()):
                return seen
        raise AssertionError(f"stream ended; events so far: {seen}")

    def close(self) -> None:
        """Drop the connection, as a client that goes away."""
        self.response.close()
        self.conn.close()


def open_streams(port: int) -> float:
    """The open-streams gauge, summed over workers, scraped from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = GAUGE.search(text)
    return float(found.group(1)) if found else 0.0


def our_clients(client: redis.Redis, prefix: str) -> dict[str, int]:
    """Redis connections named by the API's stream code for this prefix, by name."""
    counts: dict[str, int] = {}
    for entry in client.client_list():
        name = entry.get("name", "")
        if name.startswith(f"{prefix}:"):
            counts[name] = counts.get(name, 0) + 1
    return counts


def at(second: int) -> datetime:
    """Whole epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(second, UTC)


def produce(settings: Settings, org_id: str, seconds: Iterable[int]) -> int:
    """Publish one record.created per second given; returns how many."""
    n = 0
    with Publisher(settings.kafka_bootstrap_servers, settings.record_events_topic) as publisher:
        for second in seconds:
            event_id = uuid.uuid4().hex
            publisher.publish(RecordCreated(event_id, org_id, f"rec-{event_id}", at(second)))
            n += 1
    return n


@contextmanager
def api_running(settings: Settings, **extra: str) -> Iterator[Proc]:
    """The real API (gunicorn, gevent workers) for the duration of the block."""
    proc = start_api(settings, **extra)
    try:
        yield proc
    finally:
        proc.stop()
