"""The generation record: which generation of the projection is live, and a rebuild of the next.

Pure state and its transitions, no I/O: `projector.registry` stores the record in one Redis
hash (`keys.generation_key`) and replaces it only by compare-and-set on `version`, so each
transition is atomic however many processes race (two rebuilds claiming at once: one wins,
the other reads the winner's claim and is refused).

A rebuild's life (docs/design.md, "Rebuilding the projection"):

    idle --claim--> BUILDING --request_move--> MOVING --switch--> idle (old one retired)
                      |  (killed: claim again resumes)  |              --swept--> idle
                      +------------abort----------------+--> ABORTING --aborted--> idle

`target` is the generation live projectors apply: the live one, except while MOVING, when
they move to the rebuild's generation ahead of the switch, so the live one stops changing and
the new one can be seen to hold everything it held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from projector import keys

# A rebuild's owner is presumed gone once its heartbeat is this old (seconds).
LEASE_SECONDS = 15.0


class GenerationError(Exception):
    """Base of the generation record's refusals; the message says what to do."""


class RebuildRunning(GenerationError):
    """Another rebuild holds the claim and is alive."""


class AbortUnderWay(GenerationError):
    """An aborted rebuild is still being removed."""


class RetiredPending(GenerationError):
    """The generation a switch retired is still being deleted."""


class NoRebuild(GenerationError):
    """There is no rebuild (to abort, move or switch)."""


class NotOwner(GenerationError):
    """The rebuild's claim belongs to another process now (taken over, or aborted)."""


class Phase(StrEnum):
    """Where a rebuild stands."""

    BUILDING = "building"  # reading the topic from its first offset into the new generation
    MOVING = "moving"  # live projectors move to the new generation; reads stay on the old
    ABORTING = "aborting"  # live projectors move back; then the new generation is deleted


@dataclass(frozen=True)
class Generation:
    """One generation of the projection and the settings it is built with."""

    number: int
    dedup_window_seconds: int


@dataclass(frozen=True)
class Owner:
    """The process holding a rebuild's claim (or finishing its abort)."""

    token: str
    host: str
    pid: int
    since: float  # when it claimed (epoch seconds)


@dataclass(frozen=True)
class Heartbeat:
    """The last sign of life of a rebuild's owner; `at` 0 when it let go on exit."""

    token: str
    at: float

    @property
    def released(self) -> bool:
        """Whether the owner stopped on purpose (a clean exit, Ctrl-C)."""
        return self.at == 0


@dataclass(frozen=True)
class Rebuild:
    """The generation being built, and by whom."""

    generation: Generation
    phase: Phase
    owner: Owner
    started_at: float


def owner_alive(
    owner: Owner,
    beat: Heartbeat | None,
    now: float,
    host: str,
    pid_alive: Callable[[int], bool],
) -> bool:
    """Whether the owner may still be running: its heartbeat (or, before its first, its claim)
    is younger than LEASE_SECONDS and it did not let go; on this host, its pid also lives (so a
    killed rebuild run again here takes over at once)."""
    own_beat = beat if beat is not None and beat.token == owner.token else None
    if own_beat is not None and own_beat.released:
        return False
    if owner.host == host and not pid_alive(owner.pid):
        return False
    last = own_beat.at if own_beat is not None else owner.since
    return now - last < LEASE_SECONDS


@dataclass(frozen=True)
class GenerationState:
    """The record: the live generation, a rebuild if any, a retired generation being deleted."""

    version: int  # 0: nothing stored yet (the first generation, with the default settings)
    live: Generation
    last: int  # the highest generation number handed out (never reused, aborted ones too)
    rebuild: Rebuild | None = None
    retired: int | None = None
    switched_at: float | None = None

    @classmethod
    def initial(cls, dedup_window_seconds: int) -> GenerationState:
        """What an empty Redis holds: the first generation, with these settings."""
        first = Generation(keys.FIRST_GENERATION, dedup_window_seconds)
        return cls(0, first, keys.FIRST_GENERATION)

    @property
    def target(self) -> Generation:
        """The generation live projectors apply now."""
        if self.rebuild is not None and self.rebuild.phase is Phase.MOVING:
            return self.rebuild.generation
        return self.live

    # -- transitions: each returns the next state (version + 1) or raises -----------------

    def claim(
        self,
        owner: Owner,
        dedup_window_seconds: int,
        alive: Callable[[Owner], bool],
    ) -> GenerationState:
        """Start a rebuild with these settings, or take over one whose owner is gone (it then
        resumes with its own settings). Refused while its owner is alive, while an abort or
        the deletion of a retired generation is under way."""
        rebuild = self.rebuild
        if rebuild is None:
            if self.retired is not None:
                raise RetiredPending(
                    f"generation {self.retired} is still being deleted after the last switch: "
                    "run `python -m projector rebuild` again to finish that first"
                )
            number = self.last + 1
            started = Rebuild(
                Generation(number, dedup_window_seconds), Phase.BUILDING, owner, owner.since
            )
            return self._next(rebuild=started, last=number)
        if rebuild.phase is Phase.ABORTING:
            raise AbortUnderWay(
                f"the rebuild of generation {rebuild.generation.number} was aborted and is "
                "still being removed: run `python -m projector rebuild --abort` to finish it"
            )
        if alive(rebuild.owner):
            raise RebuildRunning(
                f"a rebuild of generation {rebuild.generation.number} is running "
                f"({rebuild.phase.value}; host {rebuild.owner.host}, pid {rebuild.owner.pid}): "
                "wait for it to finish, or stop it and run `python -m projector rebuild "
                "--abort` to drop it"
            )
        return self._next(rebuild=replace(rebuild, owner=owner))

    def request_move(self, token: str) -> GenerationState:
        """The rebuild is close behind: live projectors are to move to its generation."""
        rebuild = self._owned(token)
        if rebuild.phase is not Phase.BUILDING:
            return self  # already asked (a resumed rebuild asks again)
        return self._next(rebuild=replace(rebuild, phase=Phase.MOVING))

    def switch(self, token: str, now: float) -> GenerationState:
        """Reads move to the rebuilt generation; the old one is retired (to be deleted)."""
        rebuild = self._owned(token)
        if rebuild.phase is not Phase.MOVING:
            raise GenerationError("live projectors were not asked to move yet: no switch")
        return self._next(
            live=rebuild.generation, rebuild=None, retired=self.live.number, switched_at=now
        )

    def swept(self, generation: int) -> GenerationState:
        """The retired generation's keys are gone."""
        if self.retired != generation:
            return self
        return self._next(retired=None)

    def abort(self, owner: Owner) -> GenerationState:
        """Drop the rebuild: live projectors go back to (or stay on) the live generation and
        the rebuild's owner, seeing the claim gone, stops; `owner` then removes its keys."""
        rebuild = self.rebuild
        if rebuild is None:
            raise NoRebuild("no rebuild is under way: nothing to abort")
        return self._next(rebuild=replace(rebuild, phase=Phase.ABORTING, owner=owner))

    def aborted(self, token: str) -> GenerationState:
        """The aborted generation's keys are gone: the record forgets it."""
        rebuild = self._owned(token)
        if rebuild.phase is not Phase.ABORTING:
            raise GenerationError("the rebuild was not aborted")
        return self._next(rebuild=None)

    def _owned(self, token: str) -> Rebuild:
        rebuild = self.rebuild
        if rebuild is None:
            raise NoRebuild("no rebuild is under way")
        if rebuild.owner.token != token:
            raise NotOwner(
                f"the rebuild of generation {rebuild.generation.number} is now held by "
                f"host {rebuild.owner.host}, pid {rebuild.owner.pid} ({rebuild.phase.value})"
            )
        return rebuild

    def _next(self, **changes: object) -> GenerationState:
        return replace(self, version=self.version + 1, **changes)  # type: ignore[arg-type]

    # -- the stored form -----------------------------------------------------------------

    def to_fields(self) -> dict[str, str]:
        """The record as hash fields (`keys.LIVE_FIELD` is read by the snapshot scripts)."""
        fields = {
            "version": str(self.version),
            keys.LIVE_FIELD: str(self.live.number),
            "live_window": str(self.live.dedup_window_seconds),
            "last": str(self.last),
        }
        if self.rebuild is not None:
            r = self.rebuild
            fields.update(
                rebuild=str(r.generation.number),
                rebuild_window=str(r.generation.dedup_window_seconds),
                phase=r.phase.value,
                owner=r.owner.token,
                owner_host=r.owner.host,
                owner_pid=str(r.owner.pid),
                owner_since=repr(r.owner.since),
                started_at=repr(r.started_at),
            )
        if self.retired is not None:
            fields["retired"] = str(self.retired)
        if self.switched_at is not None:
            fields["switched_at"] = repr(self.switched_at)
        return fields

    @classmethod
    def from_fields(cls, raw: Mapping[str, str], dedup_window_seconds: int) -> GenerationState:
        """The record from its hash fields; the initial state when there are none."""
        if not raw:
            return cls.initial(dedup_window_seconds)
        rebuild = None
        if "rebuild" in raw:
            owner = Owner(
                raw["owner"], raw["owner_host"], int(raw["owner_pid"]), float(raw["owner_since"])
            )
            rebuild = Rebuild(
                Generation(int(raw["rebuild"]), int(raw["rebuild_window"])),
                Phase(raw["phase"]),
                owner,
                float(raw["started_at"]),
            )
        return cls(
            int(raw["version"]),
            Generation(int(raw[keys.LIVE_FIELD]), int(raw["live_window"])),
            int(raw["last"]),
            rebuild,
            int(raw["retired"]) if "retired" in raw else None,
            float(raw["switched_at"]) if "switched_at" in raw else None,
        )


@dataclass(frozen=True)
class Ack:
    """A live projector's word: it applies `generation`, as of record version `version` (it
    read the record at that version after its last batch to any other generation landed)."""

    generation: int
    version: int

    def __str__(self) -> str:
        return f"{self.generation}:{self.version}"

    @classmethod
    def parse(cls, text: str) -> Ack:
        """The stored form back (`generation:version`)."""
        generation, _, version = text.partition(":")
        return cls(int(generation), int(version or 0))


def unmoved(
    members: Iterable[str], acks: Mapping[str, Ack], generation: int, since_version: int = 0
) -> list[str]:
    """The live group's members (instance ids) not known to apply `generation` as of record
    version `since_version` or later."""
    return sorted(
        m
        for m in members
        if (ack := acks.get(m)) is None
        or ack.generation != generation
        or ack.version < since_version
    )
