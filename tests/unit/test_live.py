"""The readers' cached live generation: read once per TTL, taught at once by a notice or a
script's refusal, never taught backwards by a read that was overtaken."""

from __future__ import annotations

import pytest

from projector import keys
from projector.live import LiveGeneration


class Record:
    """What the cache asks of Redis (HGET of the record's live field), and how often."""

    def __init__(self, live: int | None) -> None:
        self.live = live
        self.reads = 0

    def hget(self, key: str, field: str) -> bytes | None:
        assert key == keys.generation_key("prc") and field == keys.LIVE_FIELD
        self.reads += 1
        return None if self.live is None else str(self.live).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_empty_record_is_the_first_generation_read_once_per_ttl() -> None:
    record, clock = Record(None), Clock()
    live = LiveGeneration(record, "prc", ttl=2.0, clock=clock)
    assert live.current() == keys.FIRST_GENERATION and record.reads == 1
    clock.now += 1.9
    assert live.current() == 1 and record.reads == 1  # fresh: no round trip
    record.live = 2
    clock.now += 0.2
    assert live.current() == 2 and record.reads == 2  # stale: read again


def test_a_notice_teaches_at_once_and_an_overtaken_read_does_not_undo_it() -> None:
    record, clock = Record(1), Clock()
    live = LiveGeneration(record, "prc", ttl=2.0, clock=clock)
    assert live.current() == 1
    read_started = clock.now + 0.5
    clock.now += 1.0
    live.learn(2)  # the switch notice
    live.learn(1, at=read_started)  # a read begun before the notice, answered after it
    assert live.current() == 2 and record.reads == 1


@pytest.mark.parametrize("bad", [0, -3])
def test_nonsense_is_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        LiveGeneration(Record(1), "prc").learn(bad)
