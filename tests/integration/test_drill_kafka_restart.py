"""Drill 3: the Kafka broker (a private one) restarted during ingest. The projector waits and
resumes by itself with exact counts; the API keeps answering counts from Redis throughout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import redis

from api.middleware import BASE_PATH
from config import Settings
from events.topics import ensure_topics
from projector.buckets import MAX_SECOND
from scripts.harness import Proc, start_api, start_projector, wait_until
from scripts.kafka_broker import KafkaBroker
from tests.integration.drills import Answer, Feeder, call, recent_plan
from tests.integration.projection import store_for, wait_projected
from tests.support.api_inputs import count_body


class Poller(threading.Thread):
    """Asks the API for a count every `interval` seconds until stopped; keeps every answer."""

    def __init__(self, port: int, org: str, interval: float = 0.1) -> None:
        super().__init__(name="poller", daemon=True)
        self.port, self.org, self.interval = port, org, interval
        self.answers: list[tuple[float, Answer | Exception]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        """Poll until `halt` is set."""
        body = count_body(self.org, 0, MAX_SECOND)
        while not self.halt.wait(self.interval):
            try:
                answer: Answer | Exception = call(self.port, "POST", BASE_PATH, body)
            except Exception as exc:  # recorded, asserted on below
                answer = exc
            self.answers.append((time.monotonic(), answer))


def test_kafka_restart_during_ingest(
    drill_settings: Settings,
    private_kafka: Callable[..., KafkaBroker],
    drill_redis: redis.Redis,
    procs: list[Proc],
) -> None:
    kafka = private_kafka(partitions=3, heap="384m")
    settings = replace(
        drill_settings,
        kafka_bootstrap_servers=kafka.bootstrap_servers,
        projector_max_batch=200,
    )
    ensure_topics(settings.kafka_bootstrap_servers, settings.record_events_topic, partitions=3)
    plan = recent_plan(4, 4000, seed=31, duplicate_ratio=0.02)
    store = store_for(settings, drill_redis)
    procs.append(start_projector(settings))
    procs.append(start_api(settings, WEB_CONCURRENCY="1"))
    projector = procs[0]
    # In a process of its own: kafka-python leaks a socket per refused connection.
    feeder = Feeder(settings, plan, rate=300, process=True)
    poller = Poller(settings.port, plan.orgs[0])
    applied = lambda: sum(store.positions().values())  # noqa: E731
    feeder.start()
    try:
        wait_until(lambda: applied() >= 1000, 60, "a quarter of the events to be applied")
        poller.start()
        down_at = time.monotonic()
        kafka.stop()  # SIGTERM: a controlled shutdown
        stopped_at = time.monotonic()
        during = applied()
        kafka.start()
        up_at = time.monotonic()
        wait_until(lambda: applied() > during, 60, "the projector to resume")
        resumed_at = time.monotonic()
    finally:
        poller.halt.set()
        summary = feeder.finish()
    poller.join(timeout=15)
    wait_projected(settings, drill_redis, timeout=120)

    outage = [a for t, a in poller.answers if down_at <= t <= up_at]
    failures = [a for _, a in poller.answers if not isinstance(a, Answer) or a.status > 201]
    slowest = max((a.seconds for _, a in poller.answers if isinstance(a, Answer)), default=0.0)
    print(
        f"\nkafka stop {stopped_at - down_at:.1f} s, down and starting {up_at - stopped_at:.1f} s;"
        f" projector applying again {resumed_at - up_at:.1f} s after the broker was back; "
        f"{len(outage)} count requests during the outage, {len(failures)} failed, "
        f"slowest {slowest:.3f} s"
    )
    assert len(outage) >= 10, "the API was hardly asked during the outage"
    assert failures == [], failures[:5]
    assert projector.alive(), projector.output()[-3000:]
    for org in plan.orgs:
        assert store.count(org, 0, MAX_SECOND) == summary.valid[org], org
