"""The generation record's state machine, one sequence of events per test: start, progress,
kill and resume, abort, switch, a second rebuild refused; and its stored form."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projector.generation import (
    LEASE_SECONDS,
    AbortUnderWay,
    Ack,
    Generation,
    GenerationError,
    GenerationState,
    Heartbeat,
    NoRebuild,
    NotOwner,
    Owner,
    Phase,
    Rebuild,
    RebuildRunning,
    RetiredPending,
    owner_alive,
    unmoved,
)

WINDOW = 604_800
HOST = "host-a"


def owner(name: str, since: float = 1_000.0, host: str = HOST, pid: int = 100) -> Owner:
    return Owner(name, host, pid, since)


def always(alive: bool) -> Callable[[Owner], bool]:
    return lambda _owner: alive


def roundtrip(state: GenerationState) -> GenerationState:
    """Through the stored form and back, as every transition goes in Redis."""
    fields = state.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    back = GenerationState.from_fields(fields, dedup_window_seconds=1)
    assert back == state
    return back


def test_an_empty_redis_is_the_first_generation_with_the_configured_window() -> None:
    state = GenerationState.from_fields({}, WINDOW)
    assert state == GenerationState.initial(WINDOW)
    assert state.version == 0 and state.live == Generation(1, WINDOW) and state.last == 1
    assert state.target == state.live and state.rebuild is None


def test_start_building_then_move_then_switch_then_sweep() -> None:
    a = owner("a")
    state = roundtrip(GenerationState.initial(WINDOW).claim(a, 3_600, always(False)))
    assert state.version == 1 and state.last == 2
    assert state.rebuild is not None
    assert state.rebuild.generation == Generation(2, 3_600)  # the rebuild's own settings
    assert state.rebuild.phase is Phase.BUILDING
    assert state.target == Generation(1, WINDOW)  # live projectors stay where they are

    moving = roundtrip(state.request_move("a"))
    assert moving.version == 2 and moving.rebuild.phase is Phase.MOVING
    assert moving.target == Generation(2, 3_600)  # they move ahead of the switch
    assert moving.live == Generation(1, WINDOW)  # reads have not moved
    assert moving.request_move("a") is moving  # asking again changes nothing

    switched = roundtrip(moving.switch("a", now=2_000.0))
    assert switched.live == Generation(2, 3_600) and switched.target == switched.live
    assert switched.rebuild is None and switched.retired == 1 and switched.switched_at == 2_000
    swept = roundtrip(switched.swept(1))
    assert swept.retired is None and swept.live.number == 2 and swept.last == 2
    assert swept.swept(1) is swept


def test_no_switch_before_live_projectors_were_asked_to_move() -> None:
    state = GenerationState.initial(WINDOW).claim(owner("a"), WINDOW, always(False))
    with pytest.raises(GenerationError):
        state.switch("a", now=5.0)


def test_a_second_rebuild_is_refused_while_the_first_one_lives() -> None:
    state = GenerationState.initial(WINDOW).claim(owner("a"), WINDOW, always(False))
    with pytest.raises(RebuildRunning, match=r"generation 2 is running.*--abort"):
        state.claim(owner("b", since=1_001.0), WINDOW, always(True))


def test_a_killed_rebuild_is_resumed_by_the_next_run_with_its_own_settings() -> None:
    state = GenerationState.initial(WINDOW).claim(owner("a"), 3_600, always(False))
    state = state.request_move("a")
    resumed = roundtrip(state.claim(owner("b", since=1_500.0), 60, always(False)))
    assert resumed.rebuild is not None
    assert resumed.rebuild.owner.token == "b"
    # The same generation, phase, settings and start: it goes on from its positions.
    assert resumed.rebuild.generation == Generation(2, 3_600)
    assert resumed.rebuild.phase is Phase.MOVING
    assert resumed.rebuild.started_at == 1_000.0 and resumed.last == 2
    with pytest.raises(NotOwner, match="pid 100"):
        resumed.switch("a", now=2_000.0)  # the killed one, had it lived on, is refused
    assert resumed.switch("b", now=2_000.0).live.number == 2


def test_abort_mid_rebuild_leaves_the_live_generation_and_never_reuses_the_number() -> None:
    state = GenerationState.initial(WINDOW).claim(owner("a"), WINDOW, always(False))
    state = state.request_move("a")
    aborting = roundtrip(state.abort(owner("x")))
    assert aborting.rebuild is not None and aborting.rebuild.phase is Phase.ABORTING
    assert aborting.target == Generation(1, WINDOW)  # live projectors come back
    with pytest.raises(NotOwner):
        aborting.request_move("a")  # the rebuild's process sees it lost the claim
    with pytest.raises(AbortUnderWay, match="--abort"):
        aborting.claim(owner("b"), WINDOW, always(False))
    again = aborting.abort(owner("y"))  # a killed abort is run again
    done = roundtrip(again.aborted("y"))
    assert done.rebuild is None and done.live == Generation(1, WINDOW) and done.retired is None
    assert done.claim(owner("c"), WINDOW, always(False)).rebuild.generation.number == 3


def test_abort_needs_a_rebuild() -> None:
    with pytest.raises(NoRebuild):
        GenerationState.initial(WINDOW).abort(owner("x"))


def test_a_rebuild_waits_for_the_last_switchs_deletion() -> None:
    state = GenerationState.initial(WINDOW).claim(owner("a"), WINDOW, always(False))
    switched = state.request_move("a").switch("a", now=9.0)
    with pytest.raises(RetiredPending, match="generation 1"):
        switched.claim(owner("b"), WINDOW, always(False))
    after = switched.swept(1).claim(owner("b"), WINDOW, always(False))
    assert after.rebuild.generation.number == 3 and after.live.number == 2


def test_every_transition_bumps_the_version() -> None:
    states = [GenerationState.initial(WINDOW)]
    states.append(states[-1].claim(owner("a"), WINDOW, always(False)))
    states.append(states[-1].request_move("a"))
    states.append(states[-1].switch("a", 3.0))
    states.append(states[-1].swept(1))
    assert [s.version for s in states] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("beat", "now", "host", "pid_lives", "alive"),
    [
        (None, 1_000.0 + LEASE_SECONDS - 1, "other", True, True),  # claimed, no beat yet
        (None, 1_000.0 + LEASE_SECONDS + 1, "other", True, False),  # claimed long ago
        (Heartbeat("a", 5_000.0), 5_001.0, "other", True, True),  # beating
        (Heartbeat("a", 5_000.0), 5_000.0 + LEASE_SECONDS, "other", True, False),  # stopped
        (Heartbeat("a", 0.0), 1_001.0, "other", True, False),  # let go on exit
        (Heartbeat("other-owner", 5_000.0), 1_001.0, "other", True, True),  # not its beat
        (Heartbeat("a", 5_000.0), 5_001.0, HOST, False, False),  # killed, on this host
        (Heartbeat("a", 5_000.0), 5_001.0, HOST, True, True),  # alive on this host
        (Heartbeat("a", 5_000.0), 5_000.0 + LEASE_SECONDS, HOST, True, False),  # hung / reused
    ],
)
def test_owner_liveness(
    beat: Heartbeat | None, now: float, host: str, pid_lives: bool, alive: bool
) -> None:
    assert owner_alive(owner("a"), beat, now, host, lambda _pid: pid_lives) is alive


def test_unmoved_members() -> None:
    acks = {"m1": Ack(2, 5), "m2": Ack(1, 4), "gone": Ack(1, 1)}
    assert unmoved(["m2", "m1", "m3"], acks, 2) == ["m2", "m3"]
    assert unmoved([], acks, 2) == []
    assert unmoved(["m1"], acks, 2) == []
    # Back on 1 as of the abort (version 6): m2's word is older than the abort.
    assert unmoved(["m1", "m2"], acks, 1, since_version=6) == ["m1", "m2"]
    assert unmoved(["m2"], {"m2": Ack(1, 6)}, 1, since_version=6) == []


@pytest.mark.parametrize("ack", [Ack(1, 0), Ack(12, 345)])
def test_acks_round_trip(ack: Ack) -> None:
    assert Ack.parse(str(ack)) == ack


@given(
    st.integers(1, 10**6),
    st.integers(1, 10**9),
    st.one_of(st.none(), st.integers(1, 50)),
    st.sampled_from(list(Phase)),
    st.floats(0, 2e9, allow_nan=False),
)
def test_the_stored_form_round_trips(
    live: int, window: int, retired: int | None, phase: Phase, at: float
) -> None:
    state = GenerationState(7, Generation(live, window), live + 3, None, retired, at)
    roundtrip(state)
    rebuild = Rebuild(Generation(live + 3, window), phase, Owner("t" * 16, "h.x", 4321, at), at)
    roundtrip(dataclasses.replace(state, rebuild=rebuild))
