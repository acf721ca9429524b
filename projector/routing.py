"""Many commands in one round trip per Redis node, on a single Redis or a Redis Cluster.

redis-py refuses EVALSHA inside a cluster pipeline, and one pipeline per key would cost a
round trip each. So commands are grouped by the primary that owns their first key (a
script's first declared key: all of a script's keys share a slot) and each group goes out as
one plain pipeline on that node's connection, the groups in parallel. Replies come back in
the order of the commands. A node that has lost its script cache gets the scripts again and
the group once more (scripts are idempotent or read-only); a MOVED/ASK reply (slots moved, a
failover) refreshes the slot map and sends the batch again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AskError, MovedError, NoScriptError, ResponseError

from events.redis_client import UNAVAILABLE, cluster_client, is_cluster
from projector.scripts import ALL

Command = tuple[Any, ...]
ATTEMPTS = 3
_POOL: ThreadPoolExecutor | None = None


def routing_key(command: Command) -> Any:
    """The key that decides where `command` runs: a script's first key, else the first arg."""
    if str(command[0]).upper() in ("EVALSHA", "EVALSHA_RO", "EVAL", "EVAL_RO"):
        return command[3]
    return command[1]


def call(client: Any, *command: Any) -> Any:
    """One command (a script call, typically) on whichever client: redis-py routes it on a
    cluster; the scripts are loaded (on every primary) and it is sent again on NOSCRIPT."""
    if is_cluster(client):
        # Straight to the node of its first key: redis-py's own routing would ask a node
        # for EVALSHA_RO's keys first (COMMAND GETKEYS), two more round trips.
        return execute(client, [command])[0]
    try:
        return client.execute_command(*command)
    except NoScriptError:
        for script in ALL:
            client.script_load(script.source)
        return client.execute_command(*command)


def execute(client: Any, commands: Sequence[Command]) -> list[Any]:
    """Send `commands`; their replies in order. Redis errors are raised (the first one)."""
    if not commands:
        return []
    if not is_cluster(client):
        return _on_node(client, list(commands))
    client = cluster_client(client)
    for attempt in range(ATTEMPTS):
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i, command in enumerate(commands):
            node = client.get_node_from_key(routing_key(command))
            groups.setdefault(node.name, (node, []))[1].append(i)
        try:
            return _gather(client, commands, list(groups.values()))
        except (MovedError, AskError):
            client.nodes_manager.initialize()  # the slots moved: route again
            if attempt == ATTEMPTS - 1:
                raise
        except UNAVAILABLE:
            # A failover may have named a new primary: learn the map for the next attempt.
            with contextlib.suppress(Exception):
                client.nodes_manager.initialize()
            raise
    raise AssertionError("unreachable")


def _gather(client: RedisCluster, commands: Sequence[Command], groups: list[Any]) -> list[Any]:
    replies: list[Any] = [None] * len(commands)

    def run(node: Any, indexes: list[int]) -> None:
        connection = client.get_redis_connection(node)
        for i, reply in zip(
            indexes, _on_node(connection, [commands[i] for i in indexes]), strict=True
        ):
            replies[i] = reply

    if len(groups) == 1:
        run(*groups[0])
        return replies
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="redis-node")
    for future in [_POOL.submit(run, node, indexes) for node, indexes in groups]:
        future.result()
    return replies


def _on_node(client: redis.Redis, commands: list[Command]) -> list[Any]:
    """One pipeline on one node; the scripts are loaded and the pipeline resent on NOSCRIPT."""
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        replies = pipe.execute(raise_on_error=False)
        errors = [r for r in replies if isinstance(r, ResponseError)]
        if not errors:
            return replies
        if attempt == 0 and any(isinstance(e, NoScriptError) for e in errors):
            # Redis restarted or flushed its scripts. A resent apply is idempotent (per-org
            # offsets), the other scripts read or only raise values.
            for script in ALL:
                client.script_load(script.source)
            continue
        raise errors[0]
    raise AssertionError("unreachable")
