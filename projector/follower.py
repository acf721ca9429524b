"""Which generation a live projector applies: the generation record's target, read before each
batch is handed on, and acknowledged once per change of the record.

Reading the record after the poll and before the hand-over is the rule a rebuild relies on:
every batch a live projector ever applies to a generation was polled before a read that still
named that generation, so once every member has acknowledged the next one, everything the
old generation will ever hold lies below the log ends as of then (docs/design.md,
"Rebuilding the projection"). The batch in flight has landed when the projector asks.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

from config import Settings
from events.redis_client import UNAVAILABLE
from projector.applier import RETRY_BACKOFF
from projector.generation import Ack, Generation, GenerationState
from projector.progress import with_redis
from projector.registry import GenerationRegistry

log = logging.getLogger(__name__)


class GenerationFollower:
    """The record as this live projector last read it, and its acknowledgements."""

    def __init__(self, client: Any, settings: Settings, stop: threading.Event) -> None:
        window = settings.dedup_window_seconds
        self._registry = GenerationRegistry(client, settings.redis_key_prefix, window)
        self._instance = settings.projector_instance_id
        self._window = window
        self._stop = stop
        self._acked: Ack | None = None
        self._warned: Generation | None = None

    def target(self) -> Generation | None:
        """The generation to apply from now on (read now; while Redis is away this waits, as
        the applier does); None once the projector is stopping. Acknowledges it, once per
        version of the record (a rebuild, or an abort, waits for these)."""
        state = self._read()
        if state is None:
            return None
        if state.version == 0:  # an empty Redis: pin the first generation's settings
            state = with_redis(self._registry.ensure) or state
        target = state.target
        if target.dedup_window_seconds != self._window and self._warned != target:
            self._warned = target
            log.warning(
                "DEDUP_WINDOW_SECONDS differs from the generation's: the generation's applies "
                "(`python -m projector rebuild` builds one with a new window)",
                extra={
                    "generation": target.number,
                    "generation_window": target.dedup_window_seconds,
                    "configured_window": self._window,
                },
            )
        ack = Ack(target.number, state.version)
        if self._acked != ack and with_redis(lambda: self._registry.ack(self._instance, ack)):
            self._acked = ack
        return target

    def _read(self) -> GenerationState | None:
        for attempt in itertools.count():
            try:
                return self._registry.read()
            except UNAVAILABLE as error:
                if self._stop.is_set():
                    return None
                delay = RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)]
                log.warning(
                    "redis unreachable; reading the generation record again",
                    extra={"error": str(error), "retry_in": delay},
                )
                self._stop.wait(delay)
        raise AssertionError("unreachable")
