"""The projector's partition tracker through every rebalance sequence (no Kafka, no Redis)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from projector.partitions import PartitionTracker


def ready_tracker(stored: dict[int, int], committed: dict[int, int | None] | None = None):
    tracker = PartitionTracker()
    assert tracker.assign(stored) == sorted(stored)
    seeks, _ = tracker.resolve(stored, committed or {}, list(stored))
    assert seeks == stored
    return tracker


def test_assigned_partitions_are_pending_until_positioned() -> None:
    tracker = PartitionTracker()
    assert tracker.assign([2, 0]) == [0, 2]
    assert tracker.pending() == [0, 2] and tracker.ready() == []
    assert not tracker.is_ready(0)
    seeks, commits = tracker.resolve({0: 10}, {0: 4, 2: None}, [0, 2])
    assert seeks == {0: 10, 2: None}  # nothing stored for 2: from the beginning
    assert commits == {0: 10}  # ahead of Kafka's 4; nothing to commit for 2
    assert tracker.ready() == [0, 2] and tracker.pending() == []


def test_assignment_while_redis_is_down_keeps_partitions_pending() -> None:
    tracker = PartitionTracker()
    tracker.assign([0, 1])
    # Redis unreachable: the consumer never calls resolve, so nothing may be applied.
    assert tracker.pending() == [0, 1] and not tracker.is_ready(0)
    assert tracker.epochs([0, 1]) == {0: 1, 1: 2}
    assert tracker.commits_due() == {} and tracker.diverged({}) == {}
    tracker.start_probe(100.0, {0: 5, 1: 5})
    assert not tracker.probing  # pending partitions are never probed
    # Redis comes back empty (wiped): both are read from the beginning, nothing skipped.
    seeks, commits = tracker.resolve({}, {0: 40, 1: 40}, [0, 1])
    assert seeks == {0: None, 1: None} and commits == {}
    assert tracker.expected([0, 1]) == {0: None, 1: None}


def test_batch_applied_moves_position_and_commits_forward() -> None:
    tracker = ready_tracker({0: 10, 1: 20})
    epochs = tracker.epochs([0, 1])
    assert tracker.expected([0, 1]) == {0: 10, 1: 20}
    assert tracker.applied(epochs, {0: 15}) == {0: 15, 1: 20}
    tracker.committed({0: 15, 1: 20})
    assert tracker.commits_due() == {}
    assert tracker.applied(epochs, {1: 30}) == {1: 30}
    assert tracker.expected([0, 1]) == {0: 15, 1: 30}


def test_revoke_with_a_batch_in_flight_ignores_its_outcome() -> None:
    tracker = ready_tracker({0: 10, 1: 20})
    epochs = tracker.epochs([0, 1])  # a batch of both partitions is read ...
    assert tracker.revoke([1]) == [1]  # ... and partition 1 is revoked before it lands
    assert tracker.applied(epochs, {0: 15, 1: 25}) == {0: 15}
    assert tracker.owned() == [0] and tracker.expected([1]) == {1: None}
    # The new owner's progress is not a divergence of ours.
    assert tracker.diverged({0: 15, 1: 99}) == {}
    assert tracker.commits_due() == {0: 15}


def test_revoke_then_reassign_starts_a_new_epoch() -> None:
    tracker = ready_tracker({0: 10})
    old = tracker.epochs([0])
    tracker.revoke([0])
    assert tracker.assign([0]) == [0]
    assert tracker.epochs([0]) != old
    assert tracker.applied(old, {0: 12}) == {}  # the old batch lands: not ours any more
    assert tracker.pending() == [0]
    seeks, _ = tracker.resolve({0: 12}, {0: 10}, [0])
    assert seeks == {0: 12}


def test_an_old_batch_landing_after_reassignment_changes_nothing() -> None:
    tracker = ready_tracker({0: 10})
    old = tracker.epochs([0])
    tracker.revoke([0])
    tracker.assign([0])
    tracker.resolve({0: 40}, {0: 40}, [0])  # the next owner moved it on meanwhile
    assert tracker.applied(old, {0: 12}) == {}
    assert tracker.expected([0]) == {0: 40}


def test_lost_partitions_are_forgotten_like_revoked_ones() -> None:
    tracker = ready_tracker({0: 10, 1: 10, 2: 10})
    tracker.start_probe(50.0, {0: 10, 1: 30, 2: 30})
    assert tracker.revoke([1, 2, 7]) == [1, 2]  # 7 was never ours
    assert tracker.owned() == [0]
    assert tracker.reached() == (50.0, [0])
    assert not tracker.probing


def test_cooperative_reannouncement_keeps_a_ready_partition() -> None:
    tracker = ready_tracker({0: 10})
    epochs = tracker.epochs([0])
    assert tracker.assign([0, 1]) == [1]
    assert tracker.is_ready(0) and tracker.applied(epochs, {0: 11}) == {0: 11}


def test_commits_never_go_below_kafkas_committed_offset() -> None:
    # Redis lost writes (or was restored from an older copy): it is behind Kafka.
    tracker = ready_tracker({0: 100}, {0: 150})
    epochs = tracker.epochs([0])
    assert tracker.commits_due() == {}
    assert tracker.applied(epochs, {0: 120}) == {}
    assert tracker.applied(epochs, {0: 160}) == {0: 160}
    tracker.committed({0: 160})
    tracker.committed({0: 155})  # a late acknowledgement of an older commit
    assert tracker.applied(epochs, {0: 158}) == {}


def test_divergence_unreadies_everything_under_new_epochs() -> None:
    tracker = ready_tracker({0: 10, 1: 20})
    epochs = tracker.epochs([0, 1])
    assert tracker.diverged({0: 10, 1: 12}) == {1: (12, 20)}
    assert tracker.unready() == [0, 1]
    assert tracker.pending() == [0, 1]
    assert tracker.applied(epochs, {0: 30}) == {}
    seeks, _ = tracker.resolve({0: 10, 1: 12}, {}, [0, 1])
    assert seeks == {0: 10, 1: 12}


def test_probe_waits_for_each_ready_partition() -> None:
    tracker = ready_tracker({0: 10, 1: 5})
    tracker.start_probe(7.0, {0: 10, 1: 8, 3: 4})
    assert tracker.lag() == {0: 0, 1: 3}  # 3 is not ours
    assert tracker.reached() == (7.0, [0])
    assert tracker.reached() == (7.0, [])
    tracker.applied(tracker.epochs([1]), {1: 8})
    assert tracker.reached() == (7.0, [1])
    assert tracker.reached() is None and not tracker.probing


def test_an_empty_partition_counts_as_reached() -> None:
    tracker = ready_tracker({})
    tracker.assign([0])
    tracker.resolve({}, {}, [0])
    tracker.start_probe(3.0, {0: 0})
    assert tracker.reached() == (3.0, [0])


class Rebalances(RuleBasedStateMachine):
    """Random rebalance sequences: state only for owned partitions, commits only forward,
    no outcome applied across an ownership change."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = PartitionTracker()
        self.redis: dict[int, int] = {}  # the positions Redis holds
        self.kafka: dict[int, int] = {}  # Kafka's committed offsets
        self.owned: set[int] = set()
        # The applier lands one batch at a time, in order; rebalances happen around it.
        self.in_flight: tuple[dict[int, int], dict[int, int]] | None = None
        self.seen: dict[int, tuple[int, int | None]] = {}  # p -> (epoch, position) last seen

    @rule(parts=st.sets(st.integers(0, 2), min_size=1))
    def assign(self, parts: set[int]) -> None:
        self.tracker.assign(parts)
        self.owned |= parts

    @rule(parts=st.sets(st.integers(0, 2), min_size=1))
    def revoke(self, parts: set[int]) -> None:
        self.tracker.revoke(parts)
        self.owned -= parts

    @rule()
    def resolve(self) -> None:
        pending = self.tracker.pending()
        seeks, commits = self.tracker.resolve(self.redis, dict(self.kafka), pending)
        assert seeks == {p: self.redis.get(p) for p in pending}
        self._commit(commits)

    @precondition(lambda self: self.in_flight is None)
    @rule(step=st.integers(1, 50))
    def read_batch(self, step: int) -> None:
        ready = self.tracker.ready()
        expected = self.tracker.expected(ready)
        positions = {p: (expected[p] or 0) + step for p in ready}
        self.in_flight = (self.tracker.epochs(ready), positions)

    @precondition(lambda self: self.in_flight is not None)
    @rule()
    def land_batch(self) -> None:
        assert self.in_flight is not None
        (epochs, positions), self.in_flight = self.in_flight, None
        for p, offset in positions.items():
            self.redis[p] = max(self.redis.get(p, 0), offset)  # lua/advance.lua
        self._commit(self.tracker.applied(epochs, positions))

    @rule(p=st.integers(0, 2), step=st.integers(1, 50))
    def another_member_advances(self, p: int, step: int) -> None:
        if p not in self.owned:
            self.redis[p] = self.redis.get(p, 0) + step

    @rule()
    def lose_redis(self) -> None:
        self.redis = {p: o // 2 for p, o in self.redis.items()}
        if self.tracker.diverged(self.redis):
            self.tracker.unready()

    def _commit(self, commits: dict[int, int]) -> None:
        for p, offset in commits.items():
            assert p in self.owned
            assert offset > self.kafka.get(p, -1), "a commit would move backwards"
            self.kafka[p] = offset
        self.tracker.committed(commits)

    @invariant()
    def only_owned_partitions_have_state(self) -> None:
        assert set(self.tracker.owned()) == self.owned
        assert set(self.tracker.commits_due()) <= set(self.tracker.ready())

    @invariant()
    def positions_only_move_forward_within_an_epoch(self) -> None:
        ready = self.tracker.ready()
        epochs, expected = self.tracker.epochs(ready), self.tracker.expected(ready)
        for p in ready:
            epoch, before = self.seen.get(p, (None, None))
            if epoch == epochs[p] and before is not None:
                assert expected[p] is not None and expected[p] >= before, (p, before, expected)
            self.seen[p] = (epochs[p], expected[p])

    @invariant()
    def ready_positions_never_pass_redis(self) -> None:
        for p, offset in self.tracker.expected(self.tracker.ready()).items():
            # What we believe Redis holds is never beyond what it holds (no loss by skipping).
            assert offset is None or offset <= self.redis.get(p, 0)


Rebalances.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestRebalances = Rebalances.TestCase
