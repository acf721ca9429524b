"""What every benchmark needs: real services, fresh names, and the table printers."""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Sequence
from dataclasses import replace

from config import Settings, StackSettings
from events.redis_client import connect
from events.topics import delete_topics, ensure_topics
from scripts.harness import delete_matching


def bench_settings(name: str, partitions: int = 6) -> Settings:
    """Settings on the real services (env, else the local stack) with a fresh topic/prefix."""
    env = Settings.from_env()
    given = StackSettings.from_env()  # servers of one's own
    if not (given.kafka_given and given.redis_given):
        from scripts import stack

        info = stack.ensure_started()
        env = replace(
            env,
            kafka_bootstrap_servers=given.kafka_bootstrap_servers or info.kafka_bootstrap_servers,
            redis_url=env.redis_url if given.redis_given else info.redis_url,
            redis_cluster=env.redis_cluster if given.redis_given else info.redis_cluster,
        )
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    settings = replace(
        env,
        record_events_topic=f"bench-{tag}",
        redis_key_prefix=f"b{tag}",
        projector_group_id=f"bench-{tag}",
        projector_instance_id=f"bench-{tag}",
        projector_metrics_port=0,
    )
    ensure_topics(settings, settings.record_events_topic, partitions)
    return settings


def cleanup(settings: Settings) -> None:
    """Remove the benchmark's topics and Redis keys."""
    delete_topics(settings, [settings.record_events_topic, settings.dlq_topic])
    cleanup_prefix(settings)


def cleanup_prefix(settings: Settings) -> None:
    """Remove the Redis keys under the settings' prefix."""
    client = connect(settings)
    delete_matching(client, f"{settings.redis_key_prefix}:*")
    client.close()


def machine() -> str:
    """One line about where the figures were taken."""
    return f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table, ready for docs/benchmarks.md."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def verdicts(rows: Sequence[tuple[str, str, bool]]) -> str:
    """The targets' table: what each asks, what was measured, PASS or MISS."""
    return table(
        ["target", "measured", "verdict"],
        [[target, got, "PASS" if ok else "MISS"] for target, got, ok in rows],
    )
