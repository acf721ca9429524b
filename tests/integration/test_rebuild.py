"""`python -m projector rebuild` for real: live projectors, the API under a count load and a
live feed keep running while a new generation is built from the topic, switched to, and the
old one deleted; a rebuild killed twice resumes; an abort leaves the live generation as it
was; a rebuild with another dedup window changes what the window governs and nothing else."""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from api.middleware import BASE_PATH
from config import Settings
from events.produce import Plan, Summary, generate, produce
from events.schema import format_utc
from events.topics import delete_topics, dlq_topic_for, ensure_topics
from projector.buckets import MAX_SECOND
from projector.generation import Ack, Generation, Phase
from projector.registry import GenerationRegistry
from scripts.harness import Proc, free_port, start_api, start_projector, start_rebuild, wait_until
from tests.integration.drills import Feeder, api_count, call, recent_plan
from tests.integration.projection import wait_projected
from tests.integration.rebuilds import (
    Blocker,
    CountLoad,
    LiveOracle,
    Target,
    generation_bytes,
    rebuild_progress,
    record,
    store_of,
    wait_generation_projected,
    wait_progress,
)
from tests.support.api_inputs import count_body, stream_path
from tests.support.live_client import LiveClient
from tests.support.oracles import ExactCounts

pytestmark = pytest.mark.integration

PARTITIONS = 6
DAY = 86_400
ORGS = 24
CLIENTS = 8
_LINE = re.compile(r"events/s, lag [\d,]+, ETA")


@dataclass
class Stack:
    """The live side of a drill: projector members and the API, stopped by pid."""

    settings: Settings
    procs: list[Proc]

    def projector(self, name: str, **extra: str) -> Proc:
        proc = start_projector(self.settings, PROJECTOR_INSTANCE_ID=name, **extra)
        self.procs.append(proc)
        return proc

    def api(self) -> Proc:
        proc = start_api(self.settings, WEB_CONCURRENCY="2")
        self.procs.append(proc)
        return proc

    def rebuild(self, *args: str, **extra: str) -> Proc:
        proc = start_rebuild(self.settings, "--progress-every", "1", *args, **extra)
        self.procs.append(proc)
        return proc


@pytest.fixture
def stack(settings: Settings) -> Iterator[Stack]:
    """A 6-partition topic, and the processes a drill starts (stopped, the topic deleted)."""
    tag = uuid.uuid4().hex[:8]
    drill = replace(
        settings,
        port=free_port(),
        rebuild_metrics_port=0,
        projector_group_id=f"live-{tag}",
        sse_keepalive_seconds=2,
    )
    topic = drill.record_events_topic
    ensure_topics(drill.kafka_bootstrap_servers, topic, partitions=PARTITIONS)
    live = Stack(drill, [])
    try:
        yield live
    finally:
        for proc in reversed(live.procs):
            proc.stop(timeout=15)
        with contextlib.suppress(Exception):
            delete_topics(drill.kafka_bootstrap_servers, [topic, dlq_topic_for(topic)])


def publish(settings: Settings, plan: Plan) -> Summary:
    """Publish a plan as fast as two producer processes go; its exact oracle (with events)."""
    return produce(
        plan,
        settings.kafka_bootstrap_servers,
        settings.record_events_topic,
        workers=2,
        keep_events=True,
    )


def live_events(plan: Plan, messages: int) -> list[tuple[str, int]]:
    """(org, second) of the first `messages` messages of a plan without duplicates."""
    summary = Summary(events=[])
    for _ in itertools.islice(generate(plan, summary), messages):
        pass
    assert summary.events is not None
    return summary.events


def rebuild_metrics(port: int) -> dict[str, float]:
    """The rebuild's own Prometheus metrics (projector_*), by series."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name.startswith("projector_")
    }


def finished(proc: Proc, timeout: float) -> int:
    """The exit code of a process that must end within `timeout`."""
    try:
        return proc.popen.wait(timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"{proc.name} still running: {proc.output()[-3000:]}") from exc


def progress_lines(proc: Proc) -> list[str]:
    return [line for line in proc.output().splitlines() if not line.startswith("{")]


def test_a_rebuild_under_load_switches_and_every_answer_is_exact(
    stack: Stack, redis_client: Any
) -> None:
    settings = stack.settings
    rng = random.Random(15)
    static_plan = recent_plan(ORGS, 300_000, seed=21, days_ago=3, duplicate_ratio=0.01)
    static = publish(settings, static_plan)
    assert sum(static.valid.values()) >= 295_000
    static_counts = ExactCounts(static.events or [])
    static_seconds = static_counts.seconds
    stack.projector("live-1")
    stack.projector("live-2")
    wait_projected(settings, redis_client, timeout=150)
    stack.api()

    # The live feed: the same orgs, two days later, so ranges over the static day never
    # change while ranges over the live day grow with every event published.
    live_plan = recent_plan(ORGS, 10**7, seed=22, days_ago=1)
    oracle = LiveOracle(live_events(live_plan, 200_000))
    feeder = Feeder(settings, live_plan, rate=400, process=True)
    static_day, live_day = static_plan.start_ms // 1000, live_plan.start_ms // 1000
    orgs = sorted(static_seconds)

    def targets(client: int) -> list[Target]:
        out = []
        for _ in range(6):
            org = rng.choice(orgs)
            start = static_day + rng.randrange(DAY)
            end = min(static_day + DAY - 1, start + rng.choice([0, 59, 3_600, 40_000, DAY]))
            out.append(Target(org, start, end, static_counts.count(org, start, end)))
        for org in rng.sample(orgs, 2):
            out.append(Target(org, live_day - client, live_day + DAY - 1, None))
        for org in rng.sample(orgs, 2):
            floor = len(static_seconds[org])
            out.append(Target(org, static_day - client, live_day + DAY - 1, None, floor))
        return out

    slack = 2 * 40  # the feeder counts a tick's messages once they are all delivered

    def live_upper(target: Target) -> int:
        return oracle.published(target.org, feeder.published + slack)

    load = CountLoad(settings.port, [targets(i) for i in range(CLIENTS)], live_upper)
    ready: list[dict[str, Any]] = []
    polling = threading.Event()

    def poll_readyz() -> None:
        while not polling.is_set():
            answer = call(settings.port, "GET", "/readyz")
            assert answer.status == 200, answer
            ready.append(answer.json())
            time.sleep(0.25)

    poller = threading.Thread(target=poll_readyz, daemon=True)
    try:
        feeder.start()
        load.start()
        poller.start()
        time.sleep(2)
        _, before_bytes = generation_bytes(redis_client, settings.redis_key_prefix, 1)
        rebuild = stack.rebuild()
        assert finished(rebuild, 170) == 0, rebuild.output()[-4000:]
        time.sleep(3)  # the load and the feed go on after the switch
    finally:
        result = load.stop()
        polling.set()
        feeder.stop()
    published = feeder.finish()
    lines = progress_lines(rebuild)
    assert any(_LINE.search(line) for line in lines), lines
    assert "switched: generation 2 is live" in lines, lines
    assert any(line.startswith("removed generation 1 (") for line in lines), lines

    # Every answer, before, during and at the switch, was a 2xx and within its oracle.
    assert result.problems == [], result.problems[:10]
    assert set(result.by_status) <= {200, 201} and result.requests > 500, result.by_status
    reports = [r["rebuild"] for r in ready if r["rebuild"] is not None]
    assert any(r["phase"] == "building" and (r["lag_records"] or 0) > 0 for r in reports), ready
    assert any(r["eta_seconds"] is not None and r["events_per_second"] for r in reports)
    assert ready[0]["generation"] == 1 and ready[-1]["generation"] == 2

    # Afterwards: the live projectors apply generation 2; every count is exact.
    state = record(settings, redis_client)
    assert (state.live.number, state.last, state.rebuild, state.retired) == (2, 2, None, None)
    wait_generation_projected(settings, redis_client, 2, timeout=60)
    final = call(settings.port, "GET", "/readyz").json()
    assert final["generation"] == 2 and final["rebuild"] is None, final
    for org in orgs:
        expected = len(static_seconds[org]) + published.valid.get(org, 0)
        assert api_count(settings.port, org, 0, MAX_SECOND) == expected, org
    store = store_of(settings, redis_client, 2)
    for _ in range(200):
        org = rng.choice(orgs)
        a, b = sorted(rng.randrange(static_day - 5, static_day + DAY + 5) for _ in range(2))
        assert store.count(org, a, b) == static_counts.count(org, a, b), (org, a, b)

    # Memory: one generation again (the old one's keys are gone, the new one holds about as
    # much as the old one did, plus the events that arrived since).
    assert generation_bytes(redis_client, settings.redis_key_prefix, 1) == (0, 0)
    _, after_bytes = generation_bytes(redis_client, settings.redis_key_prefix, 2)
    assert 0.7 * before_bytes < after_bytes < 1.3 * before_bytes, (before_bytes, after_bytes)

    # New events keep being counted exactly, by the moved live projectors.
    more = publish(settings, replace(live_plan, count=5_000, seed=23))
    wait_generation_projected(settings, redis_client, 2, timeout=60)
    for org in orgs[:6]:
        expected = len(static_seconds[org]) + published.valid.get(org, 0) + more.valid.get(org, 0)
        assert api_count(settings.port, org, 0, MAX_SECOND) == expected, org


def _projected_and_fed(
    stack: Stack, redis_client: Any, seed: int, members: list[str]
) -> tuple[Summary, Feeder]:
    """12 orgs' 150,000 events of three days ago, projected by live `members`; then a feeder
    (started) publishing more at 200 a second: the set-up of the drills that interrupt a
    rebuild."""
    settings = stack.settings
    static = publish(settings, recent_plan(12, 150_000, seed=seed, days_ago=3))
    for member in members:
        stack.projector(member)
    wait_projected(settings, redis_client, timeout=120)
    feeder = Feeder(
        settings, recent_plan(12, 10**7, seed=seed + 1, days_ago=1), rate=200, process=True
    )
    feeder.start()
    return static, feeder


def test_a_rebuild_killed_twice_resumes_and_switches_once(stack: Stack, redis_client: Any) -> None:
    settings = stack.settings
    static, feeder = _projected_and_fed(stack, redis_client, 31, ["live-1"])
    registry = GenerationRegistry(redis_client, settings.redis_key_prefix, 1)
    runs = []
    try:
        # Killed while building (its progress exported meanwhile) ...
        metrics_port = free_port()
        runs.append(stack.rebuild("--no-switch", REBUILD_METRICS_PORT=str(metrics_port)))
        wait_progress(settings, redis_client, 0.25)
        exported = wait_until(lambda: rebuild_metrics(metrics_port), 10, "rebuild metrics")
        assert exported["projector_rebuild_lag_records"] > 0, exported
        assert exported['projector_rebuild_phase{generation="2",phase="building"}'] == 1
        assert exported["projector_generation"] == 2
        runs[-1].kill()
        # ... and killed again once live projectors have moved (a member that never moves
        # holds the switch back meanwhile).
        with Blocker(settings) as blocker:
            wait_until(blocker.joined, 30, "the blocker in the live group")
            runs.append(stack.rebuild())
            wait_until(
                lambda: registry.acks().get("live-1", Ack(1, 0)).generation == 2, 60, "moved"
            )
            wait_until(
                lambda: "waiting for live projectors to move" in runs[-1].output(), 30, "wait"
            )
            runs[-1].kill()
            assert record(settings, redis_client).rebuild.phase is Phase.MOVING
        runs.append(stack.rebuild())
        assert finished(runs[-1], 150) == 0, runs[-1].output()[-4000:]
    finally:
        feeder.stop()
    published = feeder.finish()
    outputs = ["\n".join(progress_lines(run)) for run in runs]
    assert "starting the rebuild of generation 2" in outputs[0]
    assert all("resuming the rebuild of generation 2" in out for out in outputs[1:]), outputs
    assert "asking live projectors to move to generation 2" in outputs[1]
    assert sum(out.count("switched: generation") for out in outputs) == 1
    state = record(settings, redis_client)
    assert (state.live.number, state.last, state.rebuild, state.retired) == (2, 2, None, None)

    wait_generation_projected(settings, redis_client, 2, timeout=60)
    store = store_of(settings, redis_client, 2)
    for org, n in static.valid.items():
        assert store.count(org, 0, MAX_SECOND) == n + published.valid.get(org, 0), org
    assert generation_bytes(redis_client, settings.redis_key_prefix, 1) == (0, 0)


def test_an_abort_mid_rebuild_leaves_the_live_generation_as_it_was(
    stack: Stack, redis_client: Any
) -> None:
    settings = stack.settings
    plan = recent_plan(12, 150_000, seed=41, days_ago=3)
    static = publish(settings, plan)
    stack.projector("live-1")
    wait_projected(settings, redis_client, timeout=120)
    stack.api()
    lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
    rng = random.Random(4)
    asked = [(org, *sorted(rng.randrange(lo, hi) for _ in range(2))) for org in static.valid]
    asked += [(org, 0, MAX_SECOND) for org in static.valid]
    before = {q: api_count(settings.port, *q) for q in asked}
    counts = ExactCounts(static.events or [])
    assert before == {q: counts.count(*q) for q in asked}

    first = stack.rebuild("--no-switch")  # so it is still there when the abort comes
    wait_progress(settings, redis_client, 0.3)
    second = stack.rebuild()
    assert finished(second, 60) == 2, second.output()[-3000:]
    status = stack.rebuild("--status")
    assert finished(status, 30) == 0
    assert "rebuild of generation 2: building" in status.output(), status.output()
    assert any(
        "refused: a rebuild of generation 2 is running" in line for line in progress_lines(second)
    ), second.output()[-3000:]
    abort = stack.rebuild("--abort")
    assert finished(abort, 90) == 0, abort.output()[-3000:]
    assert finished(first, 30) == 2, first.output()[-3000:]  # it saw its claim go

    assert {q: api_count(settings.port, *q) for q in asked} == before
    assert generation_bytes(redis_client, settings.redis_key_prefix, 2) == (0, 0)
    state = record(settings, redis_client)
    assert (state.live.number, state.last, state.rebuild) == (1, 2, None)
    assert rebuild_progress(settings, redis_client) == {}
    assert call(settings.port, "GET", "/readyz").json()["generation"] == 1

    # The live generation goes on as before: new events are counted.
    more = publish(settings, replace(plan, count=3_000, seed=42))
    wait_projected(settings, redis_client, timeout=60)
    for org, n in static.valid.items():
        assert api_count(settings.port, org) == n + more.valid.get(org, 0), org


def test_an_abort_after_live_projectors_moved_brings_them_back(
    stack: Stack, redis_client: Any
) -> None:
    settings = stack.settings
    static, feeder = _projected_and_fed(stack, redis_client, 51, ["live-1", "live-2"])
    registry = GenerationRegistry(redis_client, settings.redis_key_prefix, 1)
    try:
        with Blocker(settings) as blocker:  # holds the switch back: the abort finds them moved
            wait_until(blocker.joined, 30, "the blocker in the live group")
            # So close behind counts as anything: live projectors are asked to move at once
            # and read the topic again into generation 2 beside the rebuild.
            first = stack.rebuild("--switch-lag", str(10**12))
            wait_until(lambda: {a.generation for a in registry.acks().values()} == {2}, 60, "moved")
            wait_until(lambda: "waiting for live projectors to move" in first.output(), 60, "held")
            abort = stack.rebuild("--abort")
            assert finished(abort, 90) == 0, abort.output()[-3000:]
            assert finished(first, 30) == 2, first.output()[-3000:]
            assert "live projectors to be back on generation 1" in abort.output()
    finally:
        feeder.stop()
    published = feeder.finish()
    state = record(settings, redis_client)
    assert (state.live.number, state.target.number, state.rebuild) == (1, 1, None)
    assert {a.generation for a in registry.acks().values()} == {1}
    assert generation_bytes(redis_client, settings.redis_key_prefix, 2) == (0, 0)
    wait_projected(settings, redis_client, timeout=60)
    store = store_of(settings, redis_client, 1)
    for org, n in static.valid.items():
        assert store.count(org, 0, MAX_SECOND) == n + published.valid.get(org, 0), org


def _publish_at(settings: Settings, messages: list[tuple[str, str, int, int]]) -> None:
    """(org, event_id, occurred_at second, record timestamp ms): each message as given."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    try:
        for org, event_id, second, timestamp_ms in messages:
            value = (
                f'{{"schema_version":1,"event_id":"{event_id}","type":"record.created",'
                f'"org_id":"{org}","record_id":"r-{event_id}",'
                f'"occurred_at":"{format_utc(second)}"}}'
            )
            producer.send(
                settings.record_events_topic,
                value.encode(),
                key=org.encode(),
                timestamp_ms=timestamp_ms,
            )
        producer.flush(60)
    finally:
        producer.close()


def _retried(org: str, n: int, gap_seconds: int, at_ms: int, second: int) -> list[Any]:
    """`n` events of `org`, each sent again `gap_seconds` later (record time) by its producer."""
    out = []
    for i in range(n):
        first = at_ms + i * 1_000
        out.append((org, f"{org}-{i}", second + i, first))
        out.append((org, f"{org}-{i}", second + i, first + gap_seconds * 1_000))
    return out


def test_a_rebuild_with_another_dedup_window_changes_what_it_governs_and_nothing_else(
    stack: Stack, redis_client: Any
) -> None:
    stack.settings = settings = replace(stack.settings, dedup_window_seconds=3_600)
    now_ms = int(time.time()) * 1000
    day = int(time.time()) // DAY * DAY - DAY  # yesterday: the events' occurred_at
    at = now_ms - 6 * 3_600_000
    plain = [
        (f"org-plain-{k}", f"p{k}-{i}", day + 7 * i, at + i) for k in range(4) for i in range(100)
    ]
    _publish_at(
        settings,
        _retried("org-far", 50, 600, at, day)  # retried 10 min apart: inside 1 h, not 60 s
        + _retried("org-near", 50, 20, at, day + 500)  # 20 s apart: inside both windows
        + plain,
    )
    stack.projector("live-1")
    wait_projected(settings, redis_client, timeout=60)
    stack.api()
    port = settings.port
    counts = {"org-far": 50, "org-near": 50, **{f"org-plain-{k}": 100 for k in range(4)}}
    assert {org: api_count(port, org) for org in counts} == counts
    kept = call(port, "POST", BASE_PATH, count_body("org-far", 1, MAX_SECOND)).json()
    ranges = [(f"org-plain-{k}", day + 7 * a, day + 7 * b) for k, a, b in [(0, 3, 40), (2, 0, 99)]]
    by_range = {q: api_count(port, *q) for q in ranges}
    before = call(port, "GET", "/readyz").json()
    stream = LiveClient(port, stream_path("org-far"))
    stream.start()
    stream.wait_count(50, 15)

    rebuild = stack.rebuild(DEDUP_WINDOW_SECONDS="60")
    assert finished(rebuild, 120) == 0, rebuild.output()[-4000:]
    state = record(settings, redis_client)
    assert state.live == Generation(2, 60)
    # An open stream follows the switch: the switch notice makes it recount.
    stream.wait_count(100, 10)
    stream.close()

    # What the window governs: retries 10 minutes apart are two events now, 20 s apart one.
    assert {org: api_count(port, org) for org in counts} == {**counts, "org-far": 100}
    # Nothing else: other counts, the stored snapshot (a frozen count), completeness.
    assert {q: api_count(port, *q) for q in ranges} == by_range
    assert call(port, "GET", f"{BASE_PATH}/{kept['id']}").json()["record_count"] == 50
    after = call(port, "GET", "/readyz").json()
    assert after["generation"] == 2 and after["caught_up_at"] >= before["caught_up_at"]

    # The live projector (configured with 1 h) applies generation 2 with the generation's 60 s.
    later = now_ms - 3_600_000
    _publish_at(
        settings,
        _retried("org-far-2", 10, 600, later, day) + _retried("org-near-2", 10, 20, later, day),
    )
    wait_generation_projected(settings, redis_client, 2, timeout=60)
    assert api_count(port, "org-far-2") == 20 and api_count(port, "org-near-2") == 10
    assert "DEDUP_WINDOW_SECONDS differs from the generation" in stack.procs[0].output()
