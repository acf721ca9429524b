"""Shared pieces of the rebuild drills (no tests here): a count load whose every answer is held
to an oracle while events keep arriving, the projection's memory per generation, and waiting
for a generation to hold the whole topic."""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.middleware import BASE_PATH
from config import Settings
from projector import keys
from projector.generation import GenerationState
from projector.registry import GenerationRegistry
from projector.store import CounterStore
from projector.sweep import nodes
from scripts.harness import wait_until
from tests.integration.drills import call
from tests.integration.projection import log_ends
from tests.support.api_inputs import count_body


@dataclass(frozen=True)
class Target:
    """A range one client asks for again and again, and what its answers must satisfy: `exact`
    when no event can still arrive in it, else at least `floor` plus the live events the
    oracle says were published, never less than the client's last answer."""

    org: str
    start: int
    end: int
    exact: int | None
    floor: int = 0


class LiveOracle:
    """How many events of an org a live feeder had published after its first `n` messages
    (the feeder's plan has neither duplicates nor invalid messages, so message = event)."""

    def __init__(self, events: list[tuple[str, int]]) -> None:
        self._index: dict[str, list[int]] = {}
        for n, (org, _) in enumerate(events):
            self._index.setdefault(org, []).append(n)

    def published(self, org: str, messages: int) -> int:
        """The org's events among the first `messages` messages."""
        return bisect.bisect_left(self._index.get(org, []), messages)


@dataclass
class LoadResult:
    """What the count load saw."""

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


class CountLoad:
    """`clients` threads POSTing their own targets at random, each answer checked at once."""

    def __init__(
        self,
        port: int,
        targets: list[list[Target]],
        live_upper: Callable[[Target], int],
        seed: int = 1,
    ) -> None:
        self._port = port
        self._targets = targets
        self._upper = live_upper
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.result = LoadResult()
        self._threads = [
            threading.Thread(target=self._client, args=(i, random.Random(seed * 100 + i)))
            for i in range(len(targets))
        ]

    def start(self) -> None:
        """Start every client."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> LoadResult:
        """Stop and wait for every client; what they saw."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.result

    def _client(self, n: int, rng: random.Random) -> None:
        last: dict[Target, int] = {}
        while not self._stop.is_set():
            target = rng.choice(self._targets[n])
            try:
                answer = call(
                    self._port, "POST", BASE_PATH, count_body(target.org, target.start, target.end)
                )
            except OSError as error:
                self._note(None, 0.0, f"client {n}: {target}: {error!r}")
                continue
            problem = None
            if answer.status not in (200, 201):
                problem = f"client {n}: {target}: HTTP {answer.status} {answer.body[:200]!r}"
            else:
                count = int(answer.json()["record_count"])
                problem = self._check(target, count, last.get(target))
                last[target] = count
            self._note(answer.status, answer.seconds, problem and f"client {n}: {problem}")

    def _check(self, target: Target, count: int, previous: int | None) -> str | None:
        if target.exact is not None:
            return None if count == target.exact else f"{target}: got {count}"
        upper = target.floor + self._upper(target)  # read after the answer arrived
        if count < target.floor or count > upper:
            return f"{target}: got {count}, outside [{target.floor}, {upper}]"
        if previous is not None and count < previous:
            return f"{target}: got {count} after {previous} (went back)"
        return None

    def _note(self, status: int | None, seconds: float, problem: str | None) -> None:
        with self._lock:
            result = self.result
            result.requests += 1
            if status is not None:
                result.by_status[status] = result.by_status.get(status, 0) + 1
                result.latencies.append(seconds)
            if problem is not None and len(result.problems) < 50:
                result.problems.append(problem)


def generation_bytes(client: Any, prefix: str, generation: int) -> tuple[int, int]:
    """(keys, bytes by MEMORY USAGE) of one generation, on every node."""
    count = total = 0
    for node in nodes(client):
        for pattern in keys.generation_patterns(prefix, generation):
            for key in node.scan_iter(match=pattern, count=1000):
                count += 1
                total += int(node.memory_usage(key, samples=0) or 0)
    return count, total


def store_of(settings: Settings, client: Any, generation: int) -> CounterStore:
    """The read side of one generation (the API's, for the test's topic and prefix)."""
    return CounterStore(
        client,
        settings.redis_key_prefix,
        settings.record_events_topic,
        generation=generation,
    )


def wait_generation_projected(
    settings: Settings, client: Any, generation: int, timeout: float = 120.0
) -> None:
    """Wait until `generation`'s positions reach the end of every partition."""
    ends = log_ends(settings)
    store = store_of(settings, client, generation)

    def done() -> bool:
        stored = store.positions()
        return all(stored.get(p, 0) >= end for p, end in ends.items() if end > 0)

    wait_until(done, timeout, f"generation {generation} to reach log ends {ends}")


def record(settings: Settings, client: Any) -> GenerationState:
    """The generation record as stored."""
    return GenerationRegistry(client, settings.redis_key_prefix, 1).read()


def rebuild_progress(settings: Settings, client: Any) -> dict[str, str]:
    """The running rebuild's last reported progress (empty when none)."""
    return GenerationRegistry(client, settings.redis_key_prefix, 1).status()[1]


def wait_progress(
    settings: Settings, client: Any, share: float, timeout: float = 120.0
) -> dict[str, str]:
    """Wait until the rebuild has reported reading `share` (0..1) of the topic."""

    def reached() -> dict[str, str] | None:
        progress = rebuild_progress(settings, client)
        applied, end = int(progress.get("applied") or 0), int(progress.get("end") or 0)
        return progress if end and applied >= share * end else None

    return wait_until(reached, timeout, f"the rebuild to pass {share:.0%}", interval=0.1)


def elapsed(since: float) -> str:
    """Seconds since `since`, for messages."""
    return f"{time.monotonic() - since:.1f}s"


class Blocker:
    """A member of the live projector group that is no projector: it never acknowledges a
    generation, so a rebuild cannot switch while it is in the group (nor does it apply its
    partitions). Stands for a live projector that cannot move (an older version, say)."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaConsumer

        self._consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.projector_group_id,
            client_id="blocker",
            enable_auto_commit=False,
            session_timeout_ms=10_000,
        )
        self._consumer.subscribe([settings.record_events_topic])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blocker", daemon=True)

    def __enter__(self) -> Blocker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.leave()

    def joined(self) -> bool:
        """Whether the group gave it partitions."""
        return bool(self._consumer.assignment())

    def leave(self) -> None:
        """Leave the group (its partitions go back to the projectors at once)."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(timeout=10)
            self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._consumer.poll(timeout_ms=200)
