"""Drill 2: Redis SIGKILLed during ingest. With `appendfsync everysec` a host crash loses up to
the last second of the AOF; a bare SIGKILL usually loses nothing (the kernel keeps what was
written), so the lost second is also simulated: the AOF is cut back to its size one second
before the kill, a few bytes into a command. What Redis recovers must be consistent (counters
agree with the per-org offsets, no partition position ahead of them), and the projector must
re-apply what was lost by itself, ending with exact counts."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from config import Settings
from projector.buckets import MAX_SECOND
from scripts.harness import Proc, free_port, start_projector, wait_until
from scripts.servers import RedisServer
from tests.integration.drills import Feeder, inconsistencies, read_topic, recent_plan
from tests.integration.projection import store_for, wait_projected

TORN = 7  # bytes into the next command: a write cut short, which Redis must drop on load


def aof_increment(data_dir: Path) -> Path:
    """The AOF file Redis appends to now (the last `type i` file of the manifest)."""
    folder = data_dir / "appendonlydir"
    manifest = next(folder.glob("*.manifest")).read_text().split("\n")
    names = [line.split()[1] for line in manifest if line.endswith("type i")]
    return folder / names[-1]


def recovered_state(
    server: RedisServer, settings: Settings, workdir: Path
) -> tuple[list[str], dict[int, int]]:
    """Load a copy of the killed server's data in a Redis of its own: its problems, positions."""
    copy = RedisServer(workdir / "inspect", free_port())
    shutil.copytree(server.data_dir, copy.data_dir)
    copy.start()
    try:
        client = redis.Redis.from_url(copy.url)
        positions = store_for(settings, client).positions()
        problems = inconsistencies(settings, client, read_topic(settings))
        client.close()
        return problems, positions
    finally:
        copy.kill()


CASES = [
    pytest.param("mid-ingest", False, id="sigkill-mid-ingest"),
    pytest.param("mid-ingest", True, id="sigkill-mid-ingest-last-second-lost"),
    pytest.param("after-ingest", True, id="sigkill-after-ingest-last-second-lost"),
]


@pytest.mark.parametrize(("when", "lose_last_second"), CASES)
def test_redis_sigkill(
    drill_settings: Settings,
    topics: str,
    private_redis: RedisServer,
    drill_redis: redis.Redis,
    procs: list[Proc],
    tmp_path: Path,
    when: str,
    lose_last_second: bool,
) -> None:
    settings = replace(drill_settings, projector_max_batch=200)
    plan = recent_plan(4, 3000, seed=21, duplicate_ratio=0.03)
    store = store_for(settings, drill_redis)
    procs.append(start_projector(settings))
    projector = procs[0]
    feeder = Feeder(settings, plan, rate=600)
    feeder.start()
    applied = lambda: sum(store.positions().values())  # noqa: E731
    aof = aof_increment(private_redis.data_dir)
    try:
        # Mark the AOF where the lost second starts: about 600 records before the kill.
        mark = 2400 if when == "after-ingest" else 1000
        wait_until(lambda: applied() >= mark, 60, f"{mark} records to be applied")
        second_ago = aof.stat().st_size
        if when == "after-ingest":  # the lost second ends the ingest: no record follows it
            feeder.finish()
            wait_projected(settings, drill_redis, timeout=60)
        else:
            wait_until(lambda: applied() >= mark + 600, 60, "a second more of ingest")
        before = applied()
        private_redis.kill()
        written = aof.stat().st_size
        if lose_last_second:
            with open(aof, "r+b") as handle:
                handle.truncate(second_ago + TORN)
        problems, positions = recovered_state(private_redis, settings, tmp_path)
        private_redis.start()
    finally:
        summary = feeder.finish()
    lost = before - sum(positions.values())
    print(
        f"\n{when}: {before} records applied before the kill, {lost} lost with "
        f"{written - second_ago - TORN if lose_last_second else 0} bytes of AOF"
    )
    assert problems == [], problems
    if lose_last_second:
        assert lost > 0, "the cut AOF lost no applied records: the drill proved nothing"
        wait_until(lambda: "re-seeking" in projector.output(), 30, "the projector to re-seek")

    wait_projected(settings, drill_redis, timeout=90)
    assert projector.alive(), projector.output()[-3000:]
    for org in plan.orgs:
        assert store.count(org, 0, MAX_SECOND) == summary.valid[org], org
    assert inconsistencies(settings, drill_redis, read_topic(settings)) == []
