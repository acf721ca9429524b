"""One Redis pub/sub subscription per worker process, fanned out to that worker's live streams.

Streams of one (org, start, end) share a `Watch`: a change notice that touches the org and
overlaps the range (or a caught_up_at that can make it complete, or a switch to another
generation) marks the watch stale and wakes its streams; the first stream to look recounts,
the others reuse that reading. The subscription lives in a background thread (a greenlet
under gunicorn's gevent worker), started by the first stream, and reconnects with backoff;
after any (re)subscription every watch is marked stale, because notices sent while it was
away are lost.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import redis
from prometheus_client import Gauge

from events.redis_client import UNAVAILABLE
from projector.store import StoreError, decode_change

OPEN_STREAMS = Gauge(
    "prc_api_open_streams",
    "Server-sent event streams open now (all workers).",
    multiprocess_mode="livesum",
)
BACKOFF_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)
SUBSCRIBE_WAIT_SECONDS = 2.0  # how long a new stream waits for the subscription to be live
POLL_SECONDS = 1.0
PING_SECONDS = 5.0  # with no traffic for this long, PING the server ...
DEAD_SECONDS = 15.0  # ... and with none for this long, call the connection dead
REDIS_DOWN = UNAVAILABLE

log = logging.getLogger(__name__)
_HUBS: weakref.WeakSet[Hub] = weakref.WeakSet()


def _ping(pubsub: Any) -> None:
    """PING over the subscription's connection(s): a cluster's pub/sub has one per node."""
    for node_pubsub in getattr(pubsub, "node_pubsub_mapping", {}).values() or [pubsub]:
        node_pubsub.ping()


def close_all() -> None:
    """End every stream of this process (its worker is stopping): clients reconnect elsewhere."""
    for hub in list(_HUBS):
        hub.close_streams()


class FanoutError(Exception):
    """Base of the fan-out's errors; the stream view turns them into 503s."""


class TooManyStreams(FanoutError):
    """This worker already holds its maximum of streams."""


class Unavailable(FanoutError):
    """The change subscription is down (Redis unreachable)."""


class Reading(NamedTuple):
    """A count and whether it is complete."""

    count: int
    complete: bool


Counter = Callable[[str, int, int], Reading]


class PubSubClient(Protocol):
    """What the hub needs of a Redis client: a pub/sub object."""

    def pubsub(self, **kwargs: Any) -> Any:
        """A new pub/sub object."""


class Watch:
    """One (org, start, end) followed by streams of this process; counted once per change."""

    def __init__(self, org_id: str, start: int, end: int) -> None:
        self.org_id, self.start, self.end = org_id, start, end
        self.subscribers: set[Subscriber] = set()
        self.wanted = 1  # bumped by each notice that may change the reading
        self.counted = 0  # the value of `wanted` the reading answers
        self.reading: Reading | None = None
        self._lock = threading.Lock()

    def read(self, counter: Counter) -> Reading:
        """The current reading: counted now if a notice came since the last count."""
        with self._lock:
            if self.reading is None or self.counted < self.wanted:
                target = self.wanted
                self.reading = counter(self.org_id, self.start, self.end)
                self.counted = target
            return self.reading


class Subscriber:
    """One stream's registration: its watch and the flag that wakes it."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self._wake = threading.Event()

    def notify(self) -> None:
        """Wake the stream (it re-reads its watch)."""
        self._wake.set()

    def wait(self, timeout: float) -> bool:
        """Sleep until notified or `timeout`; True when notified. Call `clear` before reading."""
        return self._wake.wait(timeout)

    def clear(self) -> None:
        """Forget past notices; one arriving after this wakes the next `wait`."""
        self._wake.clear()


class EventIds:
    """Event ids: milliseconds since the epoch, strictly increasing in this process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def next(self, after: int = 0) -> int:
        """An id above every earlier one here and above `after` (a client's Last-Event-ID)."""
        with self._lock:
            self._last = max(self._last + 1, after + 1, int(self._clock() * 1000))
            return self._last


class Hub:
    """This process's change subscription and the streams it wakes."""

    def __init__(
        self,
        client: PubSubClient,
        channel: str,
        counter: Counter,
        grace_seconds: int,
        max_streams: int,
        on_generation: Callable[[int], None] | None = None,
    ) -> None:
        self.channel = channel
        self.counter = counter
        self._on_generation = on_generation
        self._client = client
        self._grace = grace_seconds
        self._max = max_streams
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, int, int], Watch] = {}
        self._by_org: dict[str, set[Watch]] = {}
        self._open = 0
        self._live = threading.Event()
        self._stopping = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        _HUBS.add(self)

    @property
    def open_streams(self) -> int:
        """Streams registered in this process now."""
        return self._open

    @property
    def closing(self) -> bool:
        """Whether streams should end now (the worker is stopping)."""
        return self._closing

    @property
    def live(self) -> bool:
        """Whether the subscription is confirmed and listening."""
        return self._live.is_set()

    def open(self, org_id: str, start: int, end: int) -> Subscriber:
        """Register a stream; raises TooManyStreams, or Unavailable while Redis is away."""
        if self._closing:
            raise Unavailable("this worker is stopping")
        with self._lock:
            if self._open >= self._max:
                raise TooManyStreams(f"this worker already serves {self._max} streams")
            self._start()
        # Registered only once the subscription is live, so no notice can slip between the
        # first count and the first message received.
        if not self._live.wait(SUBSCRIBE_WAIT_SECONDS):
            raise Unavailable("the change subscription is down")
        with self._lock:
            if self._open >= self._max:
                raise TooManyStreams(f"this worker already serves {self._max} streams")
            key = (org_id, start, end)
            watch = self._watches.get(key)
            if watch is None:
                watch = self._watches[key] = Watch(org_id, start, end)
                self._by_org.setdefault(org_id, set()).add(watch)
            subscriber = Subscriber(watch)
            watch.subscribers.add(subscriber)
            self._open += 1
        OPEN_STREAMS.inc()
        return subscriber

    def close(self, subscriber: Subscriber) -> None:
        """Unregister a stream (idempotent); a watch nobody follows is dropped."""
        watch = subscriber.watch
        with self._lock:
            if subscriber not in watch.subscribers:
                return
            watch.subscribers.discard(subscriber)
            self._open -= 1
            if not watch.subscribers:
                del self._watches[(watch.org_id, watch.start, watch.end)]
                org_watches = self._by_org[watch.org_id]
                org_watches.discard(watch)
                if not org_watches:
                    del self._by_org[watch.org_id]
        OPEN_STREAMS.dec()

    def close_streams(self) -> None:
        """Ask every stream to end, and refuse new ones."""
        self._closing = True
        with self._lock:
            watches = list(self._watches.values())
        self._wake(watches)

    def stop(self) -> None:
        """Stop listening (tests, shutdown); streams stay registered."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=2 * POLL_SECONDS + 1)

    def _start(self) -> None:
        """Start the listener once (call with the lock held)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sse-fanout", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        """Listen; on a lost connection wait (backoff) and subscribe again, until stopped."""
        failures = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._listen()
            except REDIS_DOWN as error:
                log.warning("change subscription lost", extra={"error": repr(error)})
            except Exception:  # never let the one listener of this worker die
                log.exception("change subscription failed")
            self._live.clear()
            if time.monotonic() - started > DEAD_SECONDS:
                failures = 0  # it ran well for a while: start the backoff over
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            failures += 1
            self._stopping.wait(delay)

    def _listen(self) -> None:
        """Subscribe and dispatch messages until the connection fails or stop() is called."""
        pubsub = self._client.pubsub()
        # Sharded pub/sub (SSUBSCRIBE): on a cluster only the channel's node carries it.
        read = getattr(pubsub, "get_sharded_message", pubsub.get_message)
        try:
            pubsub.ssubscribe(self.channel)
            last_seen = last_ping = time.monotonic()
            while not self._stopping.is_set():
                message = read(timeout=POLL_SECONDS)
                now = time.monotonic()
                if message is None:
                    if now - last_seen > DEAD_SECONDS:
                        raise redis.exceptions.ConnectionError("no reply to PING")
                    if now - last_seen > PING_SECONDS and now - last_ping > PING_SECONDS:
                        _ping(pubsub)
                        last_ping = now
                    continue
                last_seen = now
                kind = message.get("type")
                if kind == "ssubscribe":
                    self._subscribed()
                elif kind == "smessage":
                    self._on_message(message)
        finally:
            self._live.clear()
            pubsub.close()

    def _subscribed(self) -> None:
        """Live again: notices may have been missed, so every watch is recounted."""
        with self._lock:
            watches = list(self._watches.values())
        self._wake(watches)
        self._live.set()
        log.info("change subscription live", extra={"channel": self.channel})

    def _on_message(self, message: dict[str, Any]) -> None:
        try:
            change = decode_change(message)
        except StoreError as error:
            log.warning("ignoring a malformed change notice", extra={"error": str(error)})
            return
        touched: list[Watch] = []
        if change.generation is not None:
            # A switch: every count may differ in the new generation. Learn it, recount all.
            if self._on_generation is not None:
                self._on_generation(change.generation)
            with self._lock:
                touched = list(self._watches.values())
            self._wake(touched)
            return
        with self._lock:
            for org_id, (low, high) in change.orgs.items():
                for watch in self._by_org.get(org_id, ()):
                    if watch.start <= high and low <= watch.end:
                        touched.append(watch)
            caught_up_at = change.caught_up_at
            if caught_up_at is not None:
                # A range can only become complete once its end + grace is caught up.
                for watch in self._watches.values():
                    reading = watch.reading
                    if (
                        reading is not None
                        and not reading.complete
                        and watch.end + self._grace <= caught_up_at
                    ):
                        touched.append(watch)
        self._wake(touched)

    def _wake(self, watches: list[Watch]) -> None:
        """Mark the watches stale and wake their streams."""
        subscribers: list[Subscriber] = []
        with self._lock:
            for watch in watches:
                watch.wanted += 1
                subscribers.extend(watch.subscribers)
        for subscriber in subscribers:
            subscriber.notify()
