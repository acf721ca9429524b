"""The read side's view of which generation is live: cached per process, never a round trip
of its own per request.

Each process keeps the live generation it last learnt and re-reads it once it is older than
`TTL_SECONDS`; a switch notice on the change channel, or a script that refuses a generation
no longer live, teaches it the new one at once. Why this is exact at a switch:
docs/design.md, "Rebuilding the projection".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from projector import keys, layout
from projector.store import CounterStore

# How old a cached live generation may get before it is read again. A retired generation is
# deleted only READER_GRACE_SECONDS after a switch, when no process can still be using it.
TTL_SECONDS = 2.0
READER_GRACE_SECONDS = 2 * TTL_SECONDS + 1.0


class GenerationChanging(redis.exceptions.TryAgainError):
    """Switch after switch while one request counted: it is answered as Redis being busy
    (503 with Retry-After), like any other moment the data store cannot answer."""


class LiveGeneration:
    """This process's idea of the live generation."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self._key = keys.generation_key(prefix)
        self._ttl = ttl
        self._clock = clock
        self._number: int | None = None
        self._learnt_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> int:
        """The live generation: the cached one while fresh, else read now (redis errors
        propagate)."""
        if self._number is None or self._clock() - self._learnt_at > self._ttl:
            stamp = self._clock()
            raw = self._redis.hget(self._key, keys.LIVE_FIELD)
            self.learn(keys.FIRST_GENERATION if raw is None else int(raw), stamp)
        assert self._number is not None
        return self._number

    def learn(self, generation: int, at: float | None = None) -> None:
        """`generation` was live at `at` (default now): a notice, or a script's refusal."""
        keys.check_generation(generation)
        stamp = self._clock() if at is None else at
        with self._lock:
            if stamp >= self._learnt_at or self._number is None:
                self._number, self._learnt_at = generation, stamp


class LiveCounters:
    """CounterStores of the live generation, for readers: one per generation, kept."""

    def __init__(self, client: Any, prefix: str, topic: str, live: LiveGeneration) -> None:
        self.redis = client
        self.prefix = keys.check_prefix(prefix)
        self.topic = topic
        self.live = live
        self._stores: dict[int, CounterStore] = {}

    def store(self, generation: int | None = None) -> CounterStore:
        """The store of `generation` (default: the live one); LayoutMismatch when that is
        written in a key layout this code does not read."""
        number = self.live.current() if generation is None else generation
        store = self._stores.get(number)
        if store is None:
            store = CounterStore(self.redis, self.prefix, self.topic, generation=number)
            # Once per generation: one this code cannot read is refused (LayoutMismatch, 503),
            # never answered as if empty.
            layout.check(self.redis, self.prefix, store)
            if len(self._stores) > 4:
                self._stores.clear()  # generations only ever move on: forget the old ones
            self._stores[number] = store
        return store
