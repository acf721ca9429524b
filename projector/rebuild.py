"""`python -m projector rebuild`: a new generation of the projection, built from the topic's first
offset while the live one serves, then switched to and the old one deleted.

The steps (docs/design.md, "Rebuilding the projection"; `projector.generation` holds the
record's transitions):
1. claim the rebuild in the generation record (refused while another one runs; a killed one
   is taken over and resumes from its generation's positions);
2. run the projector's poll loop on the new generation, reading every partition in a consumer
   group of its own, printing and exporting its progress;
3. once it is within `switch_lag` records of the live generation, ask live projectors to move;
   each finishes its batch in flight, re-reads its positions from the new generation and
   acknowledges; from then on the live generation no longer changes;
4. once every member of the live group has moved, read the log ends: everything the old
   generation ever applied lies below them; once the new generation's positions have reached
   them on every partition, switch: reads go to the new generation in one atomic write, and a
   notice tells every API process at once;
5. after READER_GRACE_SECONDS delete the old generation in small steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, TextIO

from kafka.errors import KafkaError

from config import Settings
from events.redis_client import UNAVAILABLE, connect
from events.topics import KafkaUnavailable, admin_client
from projector import keys, layout, metrics
from projector.consumer import Projector
from projector.generation import (
    LEASE_SECONDS,
    GenerationError,
    GenerationState,
    Owner,
    Phase,
    owner_alive,
    unmoved,
)
from projector.live import READER_GRACE_SECONDS
from projector.meter import Estimate, ProgressMeter, Reading
from projector.registry import GenerationRegistry, new_owner, pid_alive
from projector.store import CounterStore
from projector.sweep import sweep

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0  # how often the rebuild looks at the record, its progress and the group
# An abort waits for live projectors to acknowledge the live generation; a member of the live
# group that never acknowledged anything is not a projector that moves (an older version, a
# tool): after this long it is let be.
UNACKED_GRACE_SECONDS = 10.0
SWITCH_LAG = 20_000  # records behind the live generation at which live projectors move
REFUSED, STOPPED = 2, 3  # exit codes: another rebuild runs / stopped before the switch


class Outcome(Enum):
    """How the rebuild's poll loop ended."""

    SWITCHED = "switched"
    LOST = "lost"  # the claim went to another process (an abort, a takeover)


@dataclass(frozen=True)
class Options:
    """What the command line tunes."""

    switch_lag: int = SWITCH_LAG
    progress_every: float = 5.0
    # False: build and keep up, but never move live projectors nor switch (an operator checks
    # the new generation first; running again without it goes on to the switch).
    switch: bool = True
    # Records read a second at most (0: as fast as it goes): leaves Redis and CPU to the
    # live side on a busy machine (docs/benchmarks.md).
    max_rate: float = 0.0


def rebuild_group(settings: Settings, generation: int) -> str:
    """The consumer group a rebuild of `generation` commits its offsets in."""
    return f"{settings.projector_group_id}-rebuild-g{generation}"


def live_members(settings: Settings) -> list[str]:
    """The instance ids of the live projector group's members, as Kafka has them now."""
    admin = admin_client(settings)
    try:
        group = admin.describe_groups([settings.projector_group_id])[settings.projector_group_id]
    finally:
        admin.close()
    return sorted(
        str(member.get("group_instance_id") or member.get("member_id"))
        for member in group.get("members") or []
    )


def delete_group(settings: Settings, group: str) -> None:
    """Forget a rebuild's consumer group (best effort: it may never have committed)."""
    try:
        admin = admin_client(settings)
        try:
            admin.delete_groups([group])
        finally:
            admin.close()
    except (KafkaError, KafkaUnavailable) as error:
        log.warning("could not delete the rebuild's consumer group", extra={"error": str(error)})


class Rebuilder:
    """One run of `python -m projector rebuild` (or `--abort`)."""

    def __init__(
        self, settings: Settings, options: Options, out: TextIO, client: Any = None
    ) -> None:
        self.settings = settings
        self.options = options
        self.out = out
        self.redis = client or connect(
            settings, name=f"{settings.redis_key_prefix}:rebuild", timeout=5
        )
        self.registry = GenerationRegistry(
            self.redis, settings.redis_key_prefix, settings.dedup_window_seconds
        )
        self.owner = new_owner()
        self.projector: Projector | None = None
        self._stopping = False
        self._outcome: Outcome | None = None
        self._meter = ProgressMeter()
        self._estimate: Estimate | None = None
        self._last_check = self._last_line = 0.0
        self._new: CounterStore | None = None
        self._live: CounterStore | None = None
        # Log ends read once every live projector had moved (the old generation frozen).
        self._frozen: dict[int, int] | None = None
        self._read, self._read_since = 0, None  # for max_rate

    def say(self, line: str) -> None:
        """One line of progress for the operator (stdout; the logs are JSON on stderr)."""
        print(line, file=self.out, flush=True)

    def stop(self) -> None:
        """SIGTERM/SIGINT: finish the batch in hand and leave; a rerun resumes. Outside the
        poll loop (deleting keys, waiting on an abort) leave at once: that resumes too."""
        self._stopping = True
        if self.projector is None or self._outcome is not None:
            raise SystemExit(STOPPED)
        self.projector.request_stop()

    def _alive(self, owner: Owner) -> bool:
        beat = self.registry.beat()
        return owner_alive(owner, beat, time.time(), self.owner.host, pid_alive)

    def _store(self, number: int, window: int) -> CounterStore:
        prefix, topic = self.settings.redis_key_prefix, self.settings.record_events_topic
        return CounterStore(self.redis, prefix, topic, window, generation=number)

    # -- rebuild --------------------------------------------------------------------------

    def run(self) -> int:
        """Build, move, switch, delete the old generation; the exit code."""
        state = self.registry.read()
        if state.rebuild is None and state.retired is not None:
            self.say(f"the last rebuild switched; removing generation {state.retired} first")
            self._sweep_retired(state)
            return 0
        window = self.settings.dedup_window_seconds
        try:
            state = self.registry.update(lambda s: s.claim(self.owner, window, self._alive))
        except GenerationError as refused:
            self.say(f"refused: {refused}")
            return REFUSED
        rebuild = state.rebuild
        assert rebuild is not None
        generation = rebuild.generation
        self.registry.heartbeat(self.owner, None, rebuild.phase.value, time.time())
        resumed = rebuild.started_at < self.owner.since
        self.say(
            f"{'resuming' if resumed else 'starting'} the rebuild of generation "
            f"{generation.number} (live: {state.live.number}; DEDUP_WINDOW_SECONDS="
            f"{generation.dedup_window_seconds}) from "
            f"{'its stored positions' if resumed else 'the first offset'}"
        )
        if generation.dedup_window_seconds != window:
            self.say(f"  (this run's DEDUP_WINDOW_SECONDS={window} is not the rebuild's: ignored)")
        self._new = self._store(generation.number, generation.dedup_window_seconds)
        self._live = self._store(state.live.number, state.live.dedup_window_seconds)
        prefix = self.settings.redis_key_prefix
        if not resumed:
            layout.mark(self.redis, prefix, generation.number)
        try:  # resuming one an older version started: it is not this layout's to finish
            layout.require(self.redis, prefix, self._new)
        except layout.LayoutMismatch as refused:
            self.say(f"refused: {refused}; drop it with `python -m projector rebuild --abort`")
            return REFUSED
        metrics.GENERATION.set(generation.number)
        group = rebuild_group(self.settings, generation.number)
        settings = replace(
            self.settings,
            projector_group_id=group,
            projector_instance_id=f"{self.settings.projector_instance_id}-rebuild",
        )
        self.projector = Projector(settings, self.redis, rebuild=generation)
        if self._stopping:
            self.projector.request_stop()
        try:
            self.projector.run(on_batch=self._tick)
        finally:
            if self._outcome is not Outcome.SWITCHED:
                self.registry.release(self.owner)  # a rerun (or an abort) goes on at once
        if self._outcome is Outcome.LOST:
            self.say("the rebuild's claim was taken (aborted, or taken over): stopped")
            return REFUSED
        if self._outcome is not Outcome.SWITCHED:
            self.say(
                f"stopped before the switch: run again to resume generation {generation.number}"
            )
            return STOPPED
        self.say(f"switched: generation {generation.number} is live")
        delete_group(self.settings, group)
        self._sweep_retired(self.registry.read())
        return 0

    def _tick(self, handled: int) -> None:
        """After each poll: hold to `max_rate`; once a CHECK_SECONDS, the record, progress,
        move and switch."""
        self._throttle(handled)
        now = time.monotonic()
        if now - self._last_check < CHECK_SECONDS or self._outcome is not None:
            return
        self._last_check = now
        try:
            self._check()
        except GenerationError as error:  # an abort or a takeover won a race with our write
            log.warning("the rebuild's claim went elsewhere", extra={"error": str(error)})
            self._end(Outcome.LOST)
        except UNAVAILABLE as error:
            log.warning("redis unreachable; rebuild checks later", extra={"error": str(error)})
        except (KafkaError, KafkaUnavailable) as error:
            log.warning("kafka unreachable; rebuild checks later", extra={"error": str(error)})

    def _throttle(self, handled: int) -> None:
        rate = self.options.max_rate
        if rate <= 0 or self.projector is None:
            return
        self._read += handled
        if self._read_since is None:
            self._read_since = time.monotonic()
        ahead = self._read / rate - (time.monotonic() - self._read_since)
        if ahead > 0:
            self.projector.wait(min(ahead, CHECK_SECONDS))

    def _check(self) -> None:
        assert self.projector is not None and self._new is not None and self._live is not None
        state = self.registry.read()
        rebuild = state.rebuild
        if rebuild is None or rebuild.owner.token != self.owner.token:
            self._end(Outcome.LOST)
            return
        number = rebuild.generation.number
        consumer = self.projector.consumer
        waiting: list[str] = []
        if rebuild.phase is Phase.MOVING:
            waiting = unmoved(live_members(self.settings), self.registry.acks(), number)
            if not waiting and self._frozen is None:
                # Every member moved: the old generation no longer changes, and everything it
                # ever applied was polled before the move was asked, so it lies below the log
                # ends as of now. Once the new one has applied up to these, it holds all that.
                ends = consumer.end_offsets(list(consumer.assignment()))
                self._frozen = {tp.partition: end for tp, end in ends.items()}
        live_positions = self._live.positions()
        new_positions = self._new.positions()
        ends = consumer.end_offsets(list(consumer.assignment()))
        applied = sum(min(new_positions.get(tp.partition, 0), e) for tp, e in ends.items())
        self._estimate = estimate = self._meter.add(
            Reading(time.time(), applied, sum(ends.values()))
        )
        self._export(number, rebuild.phase, estimate)
        self.registry.heartbeat(self.owner, estimate, rebuild.phase.value, time.time())
        if rebuild.phase is Phase.BUILDING and self.options.switch:
            behind = sum(max(0, o - new_positions.get(p, 0)) for p, o in live_positions.items())
            if behind <= self.options.switch_lag:
                self.registry.update(lambda s: s.request_move(self.owner.token))
                self.say(
                    f"within {behind:,} records of generation {state.live.number}: "
                    f"asking live projectors to move to generation {number}"
                )
        short = None
        if self._frozen is not None:
            short = sum(max(0, e - new_positions.get(p, 0)) for p, e in self._frozen.items())
            if short == 0 and self.options.switch:
                self._switch()
                return
        if time.monotonic() - self._last_line >= self.options.progress_every:
            self._last_line = time.monotonic()
            line = estimate.line(number, rebuild.phase.value)
            if waiting:
                line += f"; waiting for live projectors to move: {', '.join(waiting)}"
            elif short is not None:
                line += f"; {short:,} records short of the switch"
            self.say(line)

    def _switch(self) -> None:
        """Make the new generation live: it holds everything the old one held (every member
        moved, positions reached), so its caught-up times may be the old one's where higher."""
        assert self._new is not None and self._live is not None
        times, partitions = self._live.caught_up_times()
        if times:
            self._new.set_caught_up(times, partitions)
        self.registry.update(lambda s: s.switch(self.owner.token, time.time()))
        self.registry.clear_progress()
        self._new.publish_switch()
        self._end(Outcome.SWITCHED)

    def _end(self, outcome: Outcome) -> None:
        self._outcome = outcome
        assert self.projector is not None
        self.projector.request_stop()

    def _export(self, number: int, phase: Phase, estimate: Estimate) -> None:
        metrics.REBUILD_LAG.set(estimate.lag)
        metrics.REBUILD_RATE.set(estimate.events_per_second or 0)
        metrics.REBUILD_ETA.set(-1 if estimate.eta_seconds is None else estimate.eta_seconds)
        for name in Phase:
            metrics.REBUILD_PHASE.labels(str(number), name.value).set(int(name is phase))

    def _sweep_retired(self, state: GenerationState) -> None:
        """Delete the generation the switch retired, once no reader can still be using it."""
        retired = state.retired
        if retired is None:
            return
        wait = (state.switched_at or 0) + READER_GRACE_SECONDS - time.time()
        if wait > 0:
            time.sleep(wait)
        removed = self._sweep(retired)
        self.registry.update(lambda s: s.swept(retired))
        self.say(f"removed generation {retired} ({removed:,} keys)")

    def _sweep(self, generation: int) -> int:
        started = time.monotonic()
        shown = [started]

        def progress(removed: int) -> None:
            if time.monotonic() - shown[0] >= self.options.progress_every:
                shown[0] = time.monotonic()
                self.say(f"  removing generation {generation}: {removed:,} keys so far")

        patterns = keys.generation_patterns(self.settings.redis_key_prefix, generation)
        return sweep(self.redis, patterns, progress=progress)

    # -- abort ----------------------------------------------------------------------------

    def abort(self) -> int:
        """Drop an unfinished rebuild: live projectors stay on (or go back to) the live
        generation, the rebuild's process stops, its generation's keys are removed."""
        found: list[Any] = []

        def abort(state: GenerationState) -> GenerationState:
            found[:] = [state.rebuild]
            return state.abort(self.owner)

        try:
            state = self.registry.update(abort)
        except GenerationError as refused:
            self.say(f"refused: {refused}")
            return REFUSED
        previous = found[0]
        assert state.rebuild is not None and previous is not None
        number, live = state.rebuild.generation.number, state.live.number
        self.say(f"aborting the rebuild of generation {number}; generation {live} stays live")
        self._wait(
            "the rebuild's process to stop",
            lambda: [] if not self._alive(previous.owner) else [previous.owner.host],
        )
        if previous.phase is not Phase.BUILDING:  # live projectors may have moved: back first
            self._wait(
                f"live projectors to be back on generation {live}",
                self._not_back(live, state.version),
            )
        removed = self._sweep(number)
        delete_group(self.settings, rebuild_group(self.settings, number))
        self.registry.update(lambda s: s.aborted(self.owner.token))
        self.registry.clear_progress()
        self.say(f"aborted: generation {number} removed ({removed:,} keys)")
        return 0

    def _not_back(self, live: int, version: int) -> Callable[[], list[str]]:
        """Who still has to acknowledge `live` as of record `version` (members that never
        acknowledged anything are let be after UNACKED_GRACE_SECONDS)."""
        started = time.monotonic()

        def waiting() -> list[str]:
            acks = self.registry.acks()
            names = unmoved(live_members(self.settings), acks, live, version)
            if time.monotonic() - started > UNACKED_GRACE_SECONDS:
                names = [m for m in names if m in acks]
            return names

        return waiting

    def _wait(self, what: str, pending: Callable[[], list[str]]) -> None:
        """Until `pending()` names nobody, saying who is waited for every few seconds."""
        deadline = time.monotonic() + LEASE_SECONDS + 120
        shown = 0.0
        while names := self._pending(pending):
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what}: {', '.join(names)}")
            if time.monotonic() - shown >= self.options.progress_every:
                shown = time.monotonic()
                self.say(f"  waiting for {what}: {', '.join(names)}")
            time.sleep(0.2)

    @staticmethod
    def _pending(pending: Callable[[], list[str]]) -> list[str]:
        try:
            return pending()
        except (*UNAVAILABLE, KafkaError, KafkaUnavailable) as error:
            log.warning("cannot tell yet; asking again", extra={"error": str(error)})
            return ["(unreachable)"]

    # -- status ---------------------------------------------------------------------------

    def status(self) -> int:
        """Print the generation record and the rebuild's last progress."""
        state, progress = self.registry.status()
        self.say(
            f"live generation {state.live.number} (DEDUP_WINDOW_SECONDS="
            f"{state.live.dedup_window_seconds})"
        )
        if state.rebuild is not None:
            r = state.rebuild
            self.say(
                f"rebuild of generation {r.generation.number}: {r.phase.value}, host "
                f"{r.owner.host} pid {r.owner.pid}; progress {progress or 'none yet'}"
            )
        if state.retired is not None:
            self.say(f"generation {state.retired} retired, still being deleted")
        return 0
