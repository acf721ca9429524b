"""`GET /stream`: live counts as server-sent events, and the page at `/` that watches them.

While Redis is away, open streams stay open (keep-alive comments go on) and send the current
count once the subscription is back; new streams get 503 + Retry-After meanwhile. A stream
ends when its client goes (a failed write, or EOF seen on the socket while idle) or its
worker stops; EventSource then reconnects after `retry`, with Last-Event-ID.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import flask
from flask import Flask, Response, current_app, request, send_from_directory
from flask.views import MethodView
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validates_schema

from api import errors
from api.bounds import BOUND_RULE
from api.fanout import (
    REDIS_DOWN,
    EventIds,
    Hub,
    Reading,
    Subscriber,
    TooManyStreams,
    Unavailable,
)
from api.middleware import BASE_PATH
from api.openapi import Api, Blueprint
from api.schemas import SNAPSHOT_ID_PATTERN, Instant, org_id_field
from api.service import EXTENSION as COMPONENTS
from api.service import Components, current_components
from config import Settings
from events.redis_client import connect
from events.schema import format_utc
from projector.keys import changes_channel
from projector.live import LiveCounters, LiveGeneration

EXTENSION = "sse-fanout"
RETRY_MILLISECONDS = 3000
MIN_EVENT_GAP = 0.1  # seconds: bursts coalesce to at most 10 events/s per stream
PEER_CHECK_SECONDS = 5.0  # how often an idle stream looks for a closed client socket
RECOUNT_RETRY_SECONDS = 2.0  # a recount that failed (Redis away) is tried again this often
# Streams count through their own bounded pool: thousands of streams must not open
# thousands of Redis connections when one notice wakes them all.
COUNT_CONNECTIONS = 8
REDIS_TIMEOUT_SECONDS = 2.0
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
STREAM_DOC = (
    "Server-sent events. `retry: 3000` first, then at once an event with the current count, "
    "then one each time the count or is_complete changes (at most ~10/s), each with a "
    "monotonic `id:` and `data: {org_id, record_count, is_complete, timestamp}`; a "
    "`: keep-alive` comment after 15 s without events. While Redis is away an open stream "
    "stays open and catches up when it is back."
)

blp = Blueprint(
    "live-stream",
    __name__,
    url_prefix=BASE_PATH,
    description="Live counts of one org and range, as server-sent events.",
)
page = flask.Blueprint("page", __name__)


class StreamQuerySchema(Schema):
    """Query of `GET /stream`: `id` of a snapshot, or `org_id`, `start` and `end`."""

    class Meta:
        unknown = EXCLUDE  # as for the list: browsers and proxies add parameters of their own

    id = fields.String(
        metadata={
            "description": "Follow this snapshot's org and range.",
            "pattern": f"^{SNAPSHOT_ID_PATTERN}$",
        }
    )
    org_id = org_id_field()
    start = Instant(metadata={"example": "2026-01-01T00:00:00Z", "description": BOUND_RULE})
    end = Instant(metadata={"example": "2026-03-31T23:59:59Z", "description": BOUND_RULE})

    @validates_schema
    def _one_target(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "id" in data:
            if any(name in data for name in ("org_id", "start", "end")):
                raise ValidationError("give either id, or org_id, start and end; not both")
            return
        missing = {
            name: ["Missing data for required field."]
            for name in ("org_id", "start", "end")
            if name not in data
        }
        if missing:
            raise ValidationError(missing)
        if data["start"] > data["end"]:
            raise ValidationError("start must not be after end")


@dataclass(frozen=True)
class Fanout:
    """What the stream view holds per app (that is, per worker process)."""

    hub: Hub
    ids: EventIds
    keepalive: float


def connect_counts(settings: Settings) -> Any:
    """A client with a small, blocking pool: many streams share a few connections."""
    return connect(
        settings,
        name=f"{settings.redis_key_prefix}:stream-counts",
        timeout=REDIS_TIMEOUT_SECONDS,
        max_connections=COUNT_CONNECTIONS,
        retries=1,
    )


def connect_pubsub(settings: Settings) -> Any:
    """A client for the one subscription: errors surface, so the hub knows notices were lost."""
    return connect(
        settings, name=f"{settings.redis_key_prefix}:stream-fanout", timeout=REDIS_TIMEOUT_SECONDS
    )


def build_fanout(settings: Settings, live: LiveGeneration) -> Fanout:
    """The hub of this process: counts, completeness and the change channel from settings;
    `live` is the process's idea of the live generation, which a switch notice updates."""
    counters = LiveCounters(
        connect_counts(settings), settings.redis_key_prefix, settings.record_events_topic, live
    )
    grace = settings.count_grace_seconds

    def count(org_id: str, start: int, end: int) -> Reading:
        store = counters.store()
        total, caught_up_at, generation = store.count_caught_up_and_live(org_id, start, end)
        if generation != store.generation:  # a switch this process had not heard of yet
            live.learn(generation)
            total, caught_up_at, _ = counters.store(generation).count_caught_up_and_live(
                org_id, start, end
            )
        return Reading(total, caught_up_at is not None and end + grace <= caught_up_at)

    hub = Hub(
        connect_pubsub(settings),
        changes_channel(settings.redis_key_prefix),
        count,
        grace,
        settings.sse_max_streams,
        on_generation=live.learn,
    )
    return Fanout(hub, EventIds(), float(settings.sse_keepalive_seconds))


def last_event_id(header: str | None) -> int:
    """The client's Last-Event-ID when it is one of our ids, else 0."""
    if header and header.isascii() and header.isdigit() and len(header) <= 18:
        return int(header)
    return 0


def encode_event(event_id: int, org_id: str, reading: Reading, now: float) -> bytes:
    """One SSE event: id and data, the contract's four keys."""
    data = json.dumps(
        {
            "org_id": org_id,
            "record_count": reading.count,
            "is_complete": reading.complete,
            "timestamp": format_utc(int(now)),
        },
        separators=(",", ":"),
    )
    return f"id: {event_id}\ndata: {data}\n\n".encode()


def peer_closed(sock: Any) -> bool:
    """Whether the client closed its side (EOF waiting on the socket); never blocks."""
    if sock is None:
        return False
    try:
        # poll, not select: a worker holding 1,000 streams has descriptors past select's 1024.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        ready = poller.poll(0)
        if not ready:
            return False
        if ready[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return True
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class EventStream:
    """The response body of one stream; closing it (or the client leaving) unregisters it."""

    def __init__(
        self, fanout: Fanout, subscriber: Subscriber, first: Reading, after: int, sock: Any
    ) -> None:
        self._fanout = fanout
        self._subscriber = subscriber
        self._first = first
        self._last_id = after
        self._sock = sock
        self._events = self._generate()

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def close(self) -> None:
        """Release the registration, whether or not the body was ever iterated."""
        self._events.close()
        self._fanout.hub.close(self._subscriber)

    def _event(self, reading: Reading, now: float) -> bytes:
        self._last_id = self._fanout.ids.next(self._last_id)
        return encode_event(self._last_id, self._subscriber.watch.org_id, reading, now)

    def _generate(self) -> Iterator[bytes]:
        hub, subscriber, keepalive = self._fanout.hub, self._subscriber, self._fanout.keepalive
        watch = subscriber.watch
        try:
            now = time.time()
            sent, pending = self._first, False
            yield f"retry: {RETRY_MILLISECONDS}\n\n".encode() + self._event(sent, now)
            last_write = last_event = time.monotonic()
            while True:
                idle = keepalive - (time.monotonic() - last_write)
                timeout = min(idle, PEER_CHECK_SECONDS)
                if pending:
                    timeout = min(timeout, RECOUNT_RETRY_SECONDS)
                woken = subscriber.wait(max(timeout, 0.0))
                if hub.closing:
                    # The worker is stopping: end the response and the connection, so it need
                    # not wait out the keep-alive for a next request; the client reconnects.
                    if self._sock is not None:
                        with contextlib.suppress(OSError):
                            self._sock.shutdown(socket.SHUT_RD)
                    return
                # An idle stream looks for a client that left; a woken one finds out by writing.
                if not woken and peer_closed(self._sock):
                    return
                if woken or pending:
                    gap = MIN_EVENT_GAP - (time.monotonic() - last_event)
                    if gap > 0:
                        time.sleep(gap)  # notices arriving meanwhile fold into this recount
                    subscriber.clear()
                    try:
                        reading, pending = watch.read(hub.counter), False
                    except REDIS_DOWN:
                        reading, pending = sent, True
                    if reading != sent:
                        sent = reading
                        yield self._event(reading, time.time())
                        last_write = last_event = time.monotonic()
                        continue
                if time.monotonic() - last_write >= keepalive:
                    yield b": keep-alive\n\n"
                    last_write = time.monotonic()
        finally:
            hub.close(subscriber)


def current_fanout() -> Fanout:
    """The fan-out of the app handling this request."""
    fanout: Fanout = current_app.extensions[EXTENSION]
    return fanout


def _unavailable(detail: str) -> Response:
    return errors.problem(503, detail, headers={"Retry-After": str(errors.RETRY_AFTER_SECONDS)})


@blp.route("/stream")
class Stream(MethodView):
    """The live count of one org and range."""

    @blp.arguments(StreamQuerySchema, location="query")
    @blp.response(200, {"type": "string"}, content_type="text/event-stream", description=STREAM_DOC)
    @blp.errors(404, 503)
    def get(self, query: dict[str, Any]) -> Response:
        """Follow a count live; 404 unknown snapshot, 422 bad query, 503 busy or no Redis."""
        if "id" in query:
            snapshot = current_components().service.get(query["id"])
            org_id, start, end = snapshot.org_id, snapshot.range_start, snapshot.range_end
        else:
            org_id, start, end = query["org_id"], query["start"], query["end"]
        fanout = current_fanout()
        try:
            subscriber = fanout.hub.open(org_id, start, end)
        except TooManyStreams:
            return _unavailable("This server holds its maximum of live streams; try again.")
        except Unavailable as exc:
            return _unavailable(f"Live counts are unavailable ({exc}); try again shortly.")
        try:
            first = subscriber.watch.read(fanout.hub.counter)
        except BaseException:
            fanout.hub.close(subscriber)
            raise
        body = EventStream(
            fanout,
            subscriber,
            first,
            last_event_id(request.headers.get("Last-Event-ID")),
            request.environ.get("gunicorn.socket"),
        )
        # content_type as given: a mimetype would get "; charset=utf-8" appended.
        return Response(body, content_type="text/event-stream", headers=HEADERS)


@page.route("/")
def index() -> Response:
    """The page that watches a live count and lists snapshots."""
    return send_from_directory(current_app.static_folder or "static", "index.html")


def init_app(app: Flask) -> None:
    """Register the stream (documented) and the page; the fan-out starts with the first stream."""
    components: Components = app.extensions[COMPONENTS]
    app.extensions[EXTENSION] = build_fanout(components.settings, components.counters.live)
    api: Api = app.extensions["rest-api"]
    api.register_blueprint(blp)
    app.register_blueprint(page)
