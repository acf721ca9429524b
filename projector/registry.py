"""The generation record in Redis: read it, replace it by compare-and-set, and its side hashes
(live projectors' acknowledgements, the rebuild's heartbeat and progress).

All of it lives in the `{#}` slot (`projector.keys`), so a transition is one script call and
`/readyz` reads everything in one round trip.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from projector import keys, scripts
from projector.generation import Ack, GenerationState, Heartbeat, Owner
from projector.meter import Estimate
from projector.routing import call, execute

T = TypeVar("T")
CAS_ATTEMPTS = 50


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decoded(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def new_owner(now: float | None = None) -> Owner:
    """This process as a rebuild's owner (a fresh token: a rerun is another owner)."""
    at = time.time() if now is None else now
    return Owner(f"{uuid.uuid4().hex[:16]}", socket.gethostname(), os.getpid(), at)


def pid_alive(pid: int) -> bool:
    """Whether a process of this host has this pid and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class GenerationRegistry:
    """Reads and atomic replacements of the generation record of one deployment (prefix)."""

    def __init__(self, client: Any, prefix: str, dedup_window_seconds: int) -> None:
        self._redis = client
        self.prefix = keys.check_prefix(prefix)
        self._window = dedup_window_seconds
        self.key = keys.generation_key(prefix)
        self._members = keys.generation_members_key(prefix)
        self._rebuild = keys.rebuild_key(prefix)

    # -- the record ------------------------------------------------------------------------

    def read(self) -> GenerationState:
        """The record as stored (the initial state when none is)."""
        return self._state(self._redis.hgetall(self.key))

    def _state(self, raw: Mapping[Any, Any]) -> GenerationState:
        return GenerationState.from_fields(_decoded(raw), self._window)

    def replace(self, old: GenerationState, new: GenerationState) -> bool:
        """Store `new` if the record is still `old` (by version); False when it changed."""
        pairs = [x for item in new.to_fields().items() for x in item]
        command = ("EVALSHA", scripts.GENERATION.sha, 1, self.key, str(old.version), *pairs)
        return int(call(self._redis, *command)) == 1

    def update(self, change: Callable[[GenerationState], GenerationState]) -> GenerationState:
        """Apply `change` to the record atomically (read, change, compare-and-set, again when
        another process changed it meanwhile); the stored result. `change` may raise."""
        for _ in range(CAS_ATTEMPTS):
            old = self.read()
            new = change(old)
            if new is old or self.replace(old, new):
                return new
        raise RuntimeError("the generation record keeps changing under us")

    def ensure(self) -> GenerationState:
        """The record, stored first when there was none (so its settings are pinned)."""
        state = self.read()
        if state.version == 0:
            self.replace(state, dataclasses.replace(state, version=1))  # lost a race: fine
            return self.read()
        return state

    # -- live projectors' acknowledgements ---------------------------------------------------

    def ack(self, instance_id: str, ack: Ack) -> bool:
        """Record that this live projector applies `ack.generation` (its batches to any other
        have landed) as of record version `ack.version`."""
        self._redis.hset(self._members, instance_id, str(ack))
        return True

    def acks(self) -> dict[str, Ack]:
        """Live projector instance id -> what it last said it applies."""
        return {k: Ack.parse(v) for k, v in _decoded(self._redis.hgetall(self._members)).items()}

    # -- the rebuild's heartbeat and progress --------------------------------------------

    def heartbeat(self, owner: Owner, estimate: Estimate | None, phase: str, now: float) -> None:
        """The rebuild is alive, and how far it is (for `/readyz` and a rival's refusal)."""
        fields = {"owner": owner.token, "at": repr(now), "phase": phase}
        if estimate is not None:
            fields.update(
                applied=str(estimate.applied),
                end=str(estimate.end),
                lag=str(estimate.lag),
                rate="" if estimate.events_per_second is None else repr(estimate.events_per_second),
                eta="" if estimate.eta_seconds is None else repr(estimate.eta_seconds),
            )
        self._redis.hset(self._rebuild, mapping=fields)

    def release(self, owner: Owner) -> None:
        """The owner stops on purpose: a rerun may take over at once."""
        beat = self.beat()
        if beat is not None and beat.token == owner.token:
            self._redis.hset(self._rebuild, "at", "0")

    def beat(self) -> Heartbeat | None:
        """The last heartbeat stored, if any."""
        raw = _decoded(self._redis.hgetall(self._rebuild))
        if "owner" not in raw:
            return None
        return Heartbeat(raw["owner"], float(raw.get("at") or 0))

    def clear_progress(self) -> None:
        """Forget the heartbeat and progress (the rebuild is over)."""
        self._redis.delete(self._rebuild)

    def status(self) -> tuple[GenerationState, dict[str, str]]:
        """The record and the rebuild's progress fields, in one round trip."""
        record, progress = execute(self._redis, [("HGETALL", self.key), ("HGETALL", self._rebuild)])
        return self._state(record), _decoded(progress)
