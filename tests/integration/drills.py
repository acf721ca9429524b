"""Shared pieces of the reliability drills (no tests here): a paced feeder with an exact
oracle, HTTP calls that time themselves, a consistency check of the projection against the
topic, and which gunicorn worker serves a connection."""

from __future__ import annotations

import http.client
import itertools
import json
import multiprocessing
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil
import redis
from kafka import KafkaConsumer, TopicPartition

from api.middleware import BASE_PATH
from config import Settings
from events.codec import InvalidEvent, SkippedEvent, decode
from events.produce import Plan, Summary, generate
from events.publisher import Publisher
from projector import keys
from projector.buckets import MAX_SECOND
from tests.integration.projection import log_ends, store_for
from tests.support.api_inputs import count_body

DAY_MS = 86_400_000


def recent_plan(orgs: int, count: int, seed: int, days_ago: int = 2, **extra: Any) -> Plan:
    """`count` messages for orgs org-drill-1..N with occurred_at spread over a past day."""
    end_ms = (int(time.time()) // 86400 - days_ago + 1) * DAY_MS - 1
    return Plan(
        orgs=tuple(f"org-drill-{i}" for i in range(1, orgs + 1)),
        count=count,
        start_ms=end_ms + 1 - DAY_MS,
        end_ms=end_ms,
        seed=seed,
        **extra,
    )


def oracle(plan: Plan, limit: int | None = None) -> Summary:
    """What publishing the first `limit` messages of `plan` sends (generation is pure)."""
    summary = Summary()
    for _ in itertools.islice(generate(plan, summary), limit):
        pass
    return summary


def _feed(
    settings: Settings,
    plan: Plan,
    per_tick: int,
    tick: float,
    published: Any,
    running: Any,
    paused: Any,
    halt: Any,
    errors: Any,
) -> None:
    """Publish `plan`, `per_tick` messages a tick, each tick flushed; count into `published`."""
    bootstrap, topic = settings.kafka_bootstrap_servers, settings.record_events_topic
    try:
        with Publisher(bootstrap, topic) as publisher:
            messages = generate(plan)
            next_tick, done = time.monotonic(), False
            while not done and not halt.is_set():
                if not running.is_set():
                    paused.set()
                    running.wait()
                    paused.clear()
                    next_tick = time.monotonic()
                sent = 0
                for key, value, _ in messages:
                    publisher.publish_raw(key, value)
                    sent += 1
                    if sent == per_tick:
                        break
                done = sent < per_tick
                publisher.flush(60)
                with published.get_lock():
                    published.value += sent
                next_tick += tick
                time.sleep(max(0.0, next_tick - time.monotonic()))  # pacing, not a check
    except Exception as exc:  # reported by Feeder.finish()
        errors.put(repr(exc))


class Feeder:
    """Publishes a plan's messages at `rate` per second in a thread, or in a process of its
    own (`process=True`: a producer that survives broker outages without leaking into the
    test process). Clear `running` to pause between ticks (`paused` is set while it waits);
    `stop()` ends it early. `finish()` returns the exact oracle of what was published."""

    def __init__(
        self, settings: Settings, plan: Plan, rate: float, *, process: bool = False
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.plan = plan
        self._published = ctx.Value("q", 0)
        self.running, self.paused = ctx.Event(), ctx.Event()
        self.running.set()
        self._halt = ctx.Event()
        self._errors = ctx.SimpleQueue()
        tick = 0.1
        args = (settings, plan, max(1, round(rate * tick)), tick, self._published)
        args += (self.running, self.paused, self._halt, self._errors)
        worker = ctx.Process if process else threading.Thread
        self._worker: Any = worker(target=_feed, args=args, name="feeder", daemon=True)

    @property
    def published(self) -> int:
        """Messages delivered so far."""
        return int(self._published.value)

    def start(self) -> None:
        """Start publishing."""
        self._worker.start()

    def stop(self) -> None:
        """End after the tick in hand (every message of it delivered)."""
        self._halt.set()

    def alive(self) -> bool:
        """Whether it is still publishing."""
        return bool(self._worker.is_alive())

    def finish(self, timeout: float = 180.0) -> Summary:
        """Wait for the last message; the oracle. Fails with what the publisher hit."""
        self._worker.join(timeout)
        if self._worker.is_alive():
            if isinstance(self._worker, multiprocessing.process.BaseProcess):
                self._worker.kill()
            raise AssertionError(f"feeder still publishing after {timeout:.0f}s")
        if not self._errors.empty():
            raise AssertionError(f"feeder failed: {self._errors.get()}")
        assert getattr(self._worker, "exitcode", 0) == 0, f"feeder exit {self._worker.exitcode}"
        return oracle(self.plan, self.published)


@dataclass(frozen=True)
class Answer:
    """An HTTP response and how long it took."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def call(port: int, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Answer:
    """One request on a fresh connection; raises OSError/HTTPException on failure."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        found = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, found, data, time.monotonic() - started)
    finally:
        conn.close()


def api_count(port: int, org_id: str, start: int = 0, end: int = MAX_SECOND) -> int:
    """POST a count and return record_count (asserting success)."""
    answer = call(port, "POST", BASE_PATH, count_body(org_id, start, end))
    assert answer.status in (200, 201), answer
    return int(answer.json()["record_count"])


@dataclass(frozen=True)
class Record:
    """One record.created event as it sits in the topic."""

    partition: int
    offset: int
    org_id: str
    event_id: str


def read_topic(settings: Settings) -> list[Record]:
    """Every decodable record.created event of the test's topic, with its position."""
    ends = log_ends(settings)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    try:
        tps = [TopicPartition(settings.record_events_topic, p) for p in ends]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: list[Record] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp.partition] for tp in tps):
            assert time.monotonic() < deadline, "could not read the topic back in 60 s"
            for tp, batch in consumer.poll(timeout_ms=500).items():
                for message in batch:
                    try:
                        event = decode(message.value, message.key)
                    except InvalidEvent:
                        continue
                    if not isinstance(event, SkippedEvent):
                        org, eid = event.org_id, event.event_id
                        found.append(Record(tp.partition, message.offset, org, eid))
        return found
    finally:
        consumer.close()


def inconsistencies(settings: Settings, client: redis.Redis, records: list[Record]) -> list[str]:
    """What is wrong between Redis's counters, per-org offsets and partition positions.

    Each org's count must be the distinct events at or below its applied offset (a batch is
    in whole or not at all), and no partition position may pass an event not applied.
    """
    store = store_for(settings, client)
    positions = store.positions()
    problems: list[str] = []
    applied: dict[tuple[str, int], int] = {}
    for org in sorted({r.org_id for r in records}):
        base = keys.org_base(settings.redis_key_prefix, org)
        raw = client.hgetall(keys.offsets_key(base))
        for name, value in raw.items():
            topic, _, partition = name.decode().rpartition(":")
            if topic == settings.record_events_topic:
                applied[(org, int(partition))] = int(value)
        distinct = {
            r.event_id
            for r in records
            if r.org_id == org and r.offset <= applied.get((org, r.partition), -1)
        }
        count = store.count(org, 0, MAX_SECOND)
        if count != len(distinct):
            problems.append(f"{org}: counters say {count}, its applied offsets {len(distinct)}")
    for r in records:
        if r.offset < positions.get(r.partition, 0) and r.offset > applied.get(
            (r.org_id, r.partition), -1
        ):
            problems.append(f"partition {r.partition} position passed unapplied {r}")
            break
    return problems


def serving_worker(api_port: int, client_port: int, workers: list[int]) -> int | None:
    """Which of `workers` holds the server side of the connection from `client_port`."""
    for pid in workers:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue  # a worker that ended meanwhile
        for conn in connections:
            if (
                conn.laddr
                and conn.raddr
                and (conn.laddr.port, conn.raddr.port)
                == (
                    api_port,
                    client_port,
                )
            ):
                return pid
    return None


def redis_clients(client: redis.Redis) -> int:
    """Redis's connected_clients now."""
    return int(client.info("clients")["connected_clients"])
