"""An EventSource-like client for the drills: it follows one stream in a thread and, when the
stream ends or fails, reconnects after the server's `retry` with `Last-Event-ID`, as browsers
do. Every connection and every event is recorded with its monotonic time."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scripts.harness import wait_until
from tests.support.sse import Block, SseParser

DEFAULT_RETRY_MS = 3000  # until the server sends its own `retry:`


@dataclass
class Connection:
    """One connection attempt: when, with which Last-Event-ID, what came of it."""

    opened: float
    last_event_id: str | None
    local_port: int | None = None
    status: int | None = None
    first_event: float | None = None
    comments: int = 0
    ended: float | None = None


@dataclass(frozen=True)
class Received:
    """One dispatched event."""

    at: float
    id: str | None
    data: dict[str, Any]
    connection: int  # index into LiveClient.connections


class LiveClient(threading.Thread):
    """Follows `path` on the API at `port` until `close()`; reconnects like EventSource."""

    def __init__(self, port: int, path: str, read_timeout: float = 20.0) -> None:
        super().__init__(name=f"sse-{port}", daemon=True)
        self.port, self.path, self.read_timeout = port, path, read_timeout
        self.connections: list[Connection] = []
        self.events: list[Received] = []
        self.retry_ms = DEFAULT_RETRY_MS
        self.last_id: str | None = None
        self._halt = threading.Event()
        self._sock: socket.socket | None = None

    def run(self) -> None:
        """Connect, read, and reconnect `retry` ms after each end, until closed."""
        while not self._halt.is_set():
            self._follow()
            self._halt.wait(self.retry_ms / 1000)

    def _follow(self) -> None:
        record = Connection(time.monotonic(), self.last_id)
        self.connections.append(record)
        index = len(self.connections) - 1
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.read_timeout)
        try:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            conn.connect()
            self._sock = conn.sock
            record.local_port = conn.sock.getsockname()[1]
            conn.request("GET", self.path, headers=headers)
            response = conn.getresponse()
            record.status = response.status
            if response.status != 200:
                response.read()
                return
            self._read(response, record, index)
        except (OSError, http.client.HTTPException):
            return
        finally:
            record.ended = time.monotonic()
            self._sock = None
            conn.close()

    def _read(self, response: http.client.HTTPResponse, record: Connection, index: int) -> None:
        parser = SseParser()
        while not self._halt.is_set():
            raw = response.readline()
            if not raw:
                return
            for block in parser.feed(raw):
                self._take(block, record, index)

    def _take(self, block: Block, record: Connection, index: int) -> None:
        record.comments += len(block.comments)
        if block.retry_ms is not None:
            self.retry_ms = block.retry_ms
        if block.data is None:
            return
        if block.id is not None:
            self.last_id = block.id
        now = time.monotonic()
        if record.first_event is None:
            record.first_event = now
        self.events.append(Received(now, block.id, json.loads(block.data), index))

    def close(self) -> None:
        """Stop following: drop the connection and end the thread."""
        self._halt.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.join(timeout=10)

    def latest(self) -> dict[str, Any] | None:
        """The data of the last event received, if any."""
        return self.events[-1].data if self.events else None

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> Received:
        """The first event (from now on, or earlier) whose data satisfies `predicate`."""

        def found() -> Received | None:
            return next((e for e in list(self.events) if predicate(e.data)), None)

        return wait_until(found, timeout, f"an event matching on {self.path}")

    def wait_count(self, count: int, timeout: float) -> Received:
        """The first event whose record_count is `count`."""
        return self.wait_for(lambda data: data["record_count"] == count, timeout)
