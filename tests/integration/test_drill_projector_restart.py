"""Drill 4: the projector restarted ten times in a row (SIGTERM, start) while events keep
arriving. Each SIGTERM finishes the batch in hand and exits 0; nothing is lost or doubled."""

from __future__ import annotations

import time
from dataclasses import replace

import redis

from config import Settings
from projector.buckets import MAX_SECOND
from scripts.harness import Proc, start_projector, wait_until
from tests.integration.drills import Feeder, inconsistencies, read_topic, recent_plan
from tests.integration.projection import store_for, wait_projected

RESTARTS = 10


def test_rolling_restart_under_load(
    drill_settings: Settings, topics: str, drill_redis: redis.Redis, procs: list[Proc]
) -> None:
    settings = replace(drill_settings, projector_max_batch=200)
    plan = recent_plan(4, 30_000, seed=41, duplicate_ratio=0.03)  # stopped after the restarts
    store = store_for(settings, drill_redis)
    applied = lambda: sum(store.positions().values())  # noqa: E731
    feeder = Feeder(settings, plan, rate=1000)
    feeder.start()
    exits, under_load, first_apply, stop_seconds = [], [], [], []
    try:
        for _ in range(RESTARTS):
            before, started = applied(), time.monotonic()
            proc = start_projector(settings)
            procs.append(proc)
            wait_until(lambda: applied() > before, 60, "the new projector to apply records")  # noqa: B023
            first_apply.append(time.monotonic() - started)
            under_load.append(feeder.alive())
            stopping = time.monotonic()
            exits.append(proc.stop(timeout=30))  # SIGTERM; SIGKILL only after 30 s
            stop_seconds.append(time.monotonic() - stopping)
            assert "projector stopped" in proc.output(), proc.output()[-2000:]
    finally:
        feeder.stop()
        summary = feeder.finish()
    procs.append(start_projector(settings))
    wait_projected(settings, drill_redis, timeout=90)

    print(
        f"\n{RESTARTS} restarts while {sum(summary.valid.values())} distinct events arrived at "
        f"1,000/s: first apply after start {max(first_apply):.1f} s at most "
        f"(median {sorted(first_apply)[RESTARTS // 2]:.1f} s), SIGTERM to exit "
        f"{max(stop_seconds):.2f} s at most; exit codes {exits}"
    )
    assert exits == [0] * RESTARTS
    assert all(under_load), f"the feeder had stopped before some restarts: {under_load}"
    assert inconsistencies(settings, drill_redis, read_topic(settings)) == []
    for org in plan.orgs:  # 0 lost, 0 double
        assert store.count(org, 0, MAX_SECOND) == summary.valid[org], org
