"""Several projector processes in one consumer group, members coming and going at random
moments while events arrive: counts exact, nothing stuck, nothing moving backwards."""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
import redis

from api import create_app
from config import Settings
from events.produce import Plan, Summary, generate
from events.schema import format_utc
from events.topics import admin_client, delete_topics, dlq_topic_for, ensure_topics
from scripts.harness import Proc, free_port, start_projector, wait_until
from scripts.servers import port_open
from tests.integration.drills import Feeder, inconsistencies, read_topic, recent_plan
from tests.integration.projection import log_ends, store_for, wait_projected

PARTITIONS = 6
MESSAGES = 100_000
RATE = 2_500  # messages a second: the churn below lands while they arrive
CHANGES = 16
SESSION_TIMEOUT_S = 10  # projector.consumer.SESSION_TIMEOUT_MS
_METRIC = re.compile(r'^(projector_reseeks_total|projector_partitions\{state="(\w+)"\}) (\S+)$')


@dataclass
class Member:
    """One projector process and the static-membership id it runs under."""

    instance_id: str
    metrics_port: int
    proc: Proc

    def metrics(self) -> dict[str, float]:
        """reseeks, ready and pending, from the member's own /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        found = {}
        for line in text.splitlines():
            match = _METRIC.match(line)
            if match:
                found[match.group(2) or "reseeks"] = float(match.group(3))
        return found


class Group:
    """The projector members of the drill, started and stopped by pid."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.members: dict[str, Member] = {}
        self.ids = (f"member-{n}" for n in itertools.count())
        self.changes: list[str] = []

    def start(self, instance_id: str | None = None) -> Member:
        instance_id = instance_id or next(self.ids)
        port = free_port()
        proc = start_projector(
            self.settings, PROJECTOR_INSTANCE_ID=instance_id, PROJECTOR_METRICS_PORT=str(port)
        )
        member = self.members[instance_id] = Member(instance_id, port, proc)
        return member

    def change(self, what: str, member: Member) -> None:
        self.changes.append(f"{what} {member.instance_id}")

    def kill_and_restart(self, member: Member) -> None:
        member.proc.kill()
        self.change("sigkill+restart", member)
        self.start(member.instance_id)

    def terminate_and_restart(self, member: Member) -> None:
        # A clean stop of a running member: one restarted a moment ago may still be importing,
        # before its SIGTERM handler exists (it serves metrics only once the handler is in).
        wait_until(lambda: port_open(member.metrics_port), 60, f"{member.instance_id} running")
        assert member.proc.stop() == 0, member.proc.output()[-3000:]
        self.change("sigterm+restart", member)
        self.start(member.instance_id)

    def replace_with_new_id(self, member: Member) -> None:
        member.proc.kill()
        del self.members[member.instance_id]
        self.change("sigkill, new id replaces", member)
        self.start()

    def join(self) -> None:
        member = self.start()
        self.change("join", member)

    def leave(self, member: Member) -> None:
        assert member.proc.stop() == 0, member.proc.output()[-3000:]
        del self.members[member.instance_id]
        self.change("leave", member)

    def alive(self) -> list[Member]:
        return [m for m in self.members.values() if m.proc.alive()]

    def stop_all(self) -> None:
        for member in self.members.values():
            member.proc.stop()


@pytest.fixture
def group_topic(settings: Settings) -> Iterator[str]:
    """The test's topic with 6 partitions (and its DLQ), deleted afterwards."""
    topic = settings.record_events_topic
    ensure_topics(settings.kafka_bootstrap_servers, topic, partitions=PARTITIONS)
    yield topic
    with contextlib.suppress(Exception):
        delete_topics(settings.kafka_bootstrap_servers, [topic, dlq_topic_for(topic)])


def _churn(group: Group, rng: random.Random, base: list[Member]) -> None:
    """CHANGES membership changes at random moments, 3 members (4 at times) throughout."""
    extra: Member | None = None
    for n in range(CHANGES):
        time.sleep(rng.uniform(0.8, 2.5))
        if n == 5 or n == 11:
            group.join()  # a fourth member joins ...
            extra = group.alive()[-1]
            continue
        if extra is not None and n in (8, 14):
            group.leave(extra)  # ... and leaves again
            extra = None
            continue
        members = [m for m in group.alive() if m is not extra]
        victim = rng.choice(members)
        action = rng.choice(
            [group.kill_and_restart, group.terminate_and_restart, group.kill_and_restart]
        )
        if n in (3, 9):
            action = group.replace_with_new_id
        action(victim)


def _oracle(plan: Plan, published: int) -> Summary:
    summary = Summary(events=[])
    for _ in itertools.islice(generate(plan, summary), published):
        pass
    return summary


def _ownership(settings: Settings) -> dict[str, list[int]]:
    """member instance id -> partitions Kafka assigned it (the group's own view)."""
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        group = admin.describe_groups([settings.projector_group_id])[settings.projector_group_id]
    finally:
        admin.close()
    owned: dict[str, list[int]] = {}
    for member in group["members"]:
        assigned = (member["member_assignment"] or {}).get("assigned_partitions") or []
        owned[member["group_instance_id"]] = sorted(
            p
            for entry in assigned
            if entry["topic"] == settings.record_events_topic
            for p in entry["partitions"]
        )
    return owned


def _committed(settings: Settings) -> dict[int, int]:
    admin = admin_client(settings.kafka_bootstrap_servers)
    try:
        offsets = admin.list_group_offsets({settings.projector_group_id: None})
    finally:
        admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in offsets[settings.projector_group_id].items()
        if tp.topic == settings.record_events_topic
    }


def test_members_join_leave_crash_and_return_while_events_arrive(
    settings: Settings, group_topic: str, redis_client: redis.Redis
) -> None:
    rng = random.Random(11)
    settings = replace(
        settings, projector_group_id=f"group-{uuid.uuid4().hex[:8]}", projector_max_batch=2_000
    )
    plan = recent_plan(12, MESSAGES, seed=5, duplicate_ratio=0.02)
    group = Group(settings)
    base = [group.start() for _ in range(3)]
    feeder = Feeder(settings, plan, RATE, process=True)
    try:
        feeder.start()
        _churn(group, rng, base)
        published = feeder.finish().sent
        assert published == MESSAGES
        assert len(group.changes) >= 15, group.changes
        wait_projected(settings, redis_client, timeout=180)
        # A dead static member keeps its partitions until its session times out: then every
        # partition has a live owner, each exactly one.
        live = {m.instance_id for m in group.alive()}

        def owned_by_live() -> bool:
            owned = _ownership(settings)
            parts = sorted(p for m, ps in owned.items() if m in live for p in ps)
            return set(owned) == live and parts == list(range(PARTITIONS))

        wait_until(
            owned_by_live, 3 * SESSION_TIMEOUT_S + 30, "every partition owned by a live member"
        )
        wait_until(
            lambda: (
                all(m.metrics().get("pending") == 0 for m in group.alive())
                and sum(m.metrics().get("ready", 0) for m in group.alive()) == PARTITIONS
            ),
            30,
            "every member positioned on its partitions",
        )

        # Afterwards: more events, and no member re-seeks (its own counter says so).
        before = {m.instance_id: m.metrics()["reseeks"] for m in group.alive()}
        tail = replace(plan, count=3_000, seed=6)
        tail_feeder = Feeder(settings, tail, 1_500)
        tail_feeder.start()
        tail_feeder.finish()
        wait_projected(settings, redis_client, timeout=60)
        time.sleep(2.5)  # two more once-a-second position checks
        after = {m.instance_id: m.metrics()["reseeks"] for m in group.alive()}
        assert after == before, (before, after, group.changes)

        store = store_for(settings, redis_client)
        caught = wait_until(store.caught_up_at, 30, "caught_up_at")
        wait_until(lambda: (store.caught_up_at() or 0) > caught + 1, 10, "caught_up_at advancing")
        assert time.time() - (store.caught_up_at() or 0) < 10

        ends = log_ends(settings)
        wait_until(lambda: _committed(settings) == ends, 20, f"committed offsets at {ends}")
    finally:
        group.stop_all()
        with contextlib.suppress(Exception):
            feeder.stop()

    expected = _oracle(plan, MESSAGES)
    tail_expected = _oracle(tail, 3_000)
    seconds: dict[str, list[int]] = {}
    for org, second in (expected.events or []) + (tail_expected.events or []):
        seconds.setdefault(org, []).append(second)
    for org, values in seconds.items():
        assert store.count(org, 0, 253_402_300_799) == len(values), org
    lo, hi = plan.start_ms // 1000, plan.end_ms // 1000
    for _ in range(300):
        org = rng.choice(sorted(seconds))
        a, b = sorted(rng.randint(lo - 5, hi + 5) for _ in range(2))
        assert store.count(org, a, b) == sum(1 for s in seconds[org] if a <= s <= b), (org, a, b)
    assert inconsistencies(settings, redis_client, read_topic(settings)) == []

    # A range that ended well before caught_up_at (minus the grace) is complete.
    app = create_app(settings)
    org = sorted(seconds)[0]
    body = {"org_id": org, "range": {"start": format_utc(lo), "end": format_utc(hi)}}
    try:
        answer = app.test_client().post("/api/v1/period-record-counts", json=body)
    finally:
        app.extensions["period-record-counts"].redis.close()
    assert answer.status_code == 201 and answer.json["is_complete"] is True, answer.json
    assert answer.json["record_count"] == len(seconds[org])
