"""Which key layout each generation of the projection is written in, and the guard that keeps
this code off a generation it cannot read.

The layout changed with the count tree (keys.LAYOUT 2): a generation written by the code of
before (its day/block hashes and sharded dedup, layout 1) reads as empty to this code, and this
code's writes would sit beside the old keys, counted by neither. So every generation is marked
with its layout (`keys.layout_key`: generation -> layout) when it starts: a rebuild marks the
generation it creates; the first projector on an empty, unmarked generation marks it. A
generation that holds data but no mark was written by the old code.

`judge` is the decision, pure; `require` (projector, rebuild) and `check` (API) apply it:
- marked with this layout: go on;
- unmarked and empty (a new deployment): the projector claims it; the API reads it;
- otherwise (unmarked with data, or another layout): refused with `LayoutMismatch`, whose
  message says what to do -- build a new generation with this code (`python -m projector
  rebuild`, live projectors stopped) or deploy under a new REDIS_KEY_PREFIX (the README's
  "Upgrading across a key layout change").
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from config import ConfigError
from projector import keys
from projector.store import CounterStore


class LayoutMismatch(ConfigError):
    """The generation is written in a key layout this code does not read or write: a
    deployment fault, so a projector exits 2 with the message (like refused settings) and the
    API answers 503 with it."""


class Verdict(StrEnum):
    """What to do with a generation, given its mark and whether it holds data."""

    OK = "ok"  # marked with this code's layout
    CLAIM = "claim"  # unmarked and empty: mark it with this layout, then go on
    REFUSE = "refuse"  # another layout, or unmarked with data (written before marks)


def judge(mark: int | None, has_data: bool, layout: int = keys.LAYOUT) -> Verdict:
    """The verdict for a generation marked `mark` (None: unmarked)."""
    if mark == layout:
        return Verdict.OK
    if mark is None and not has_data:
        return Verdict.CLAIM
    return Verdict.REFUSE


def refusal(generation: int, mark: int | None, layout: int = keys.LAYOUT) -> str:
    """The message of a refusal: what the generation holds, and what to do."""
    found = "an older key layout (1, before layout marks)" if mark is None else f"layout {mark}"
    return (
        f"generation {generation} of the projection is written in {found}; this version "
        f"reads and writes layout {layout}: build a new generation with this version "
        "(stop the old projectors, run `python -m projector rebuild`) or deploy it under a "
        "new REDIS_KEY_PREFIX (README, 'Upgrading across a key layout change')"
    )


def read_mark(client: Any, prefix: str, generation: int) -> int | None:
    """The layout generation `generation` is marked with (None: unmarked)."""
    raw = client.hget(keys.layout_key(prefix), str(generation))
    return None if raw is None else int(raw)


def mark(client: Any, prefix: str, generation: int, layout: int = keys.LAYOUT) -> None:
    """Mark a generation this code creates (a rebuild's, before it writes a key)."""
    client.hset(keys.layout_key(prefix), str(generation), str(layout))


def holds_data(store: CounterStore) -> bool:
    """Whether a projector ever wrote to the store's generation: every projector, old or new,
    stores partition positions and caught-up times once it has read a batch."""
    times, partitions = store.caught_up_times()
    return bool(times) or partitions is not None or bool(store.positions())


def _judged(client: Any, prefix: str, store: CounterStore) -> tuple[int | None, Verdict]:
    """The store's generation's mark and its verdict (data is looked for only when unmarked)."""
    mark_ = read_mark(client, prefix, store.generation)
    return mark_, judge(mark_, mark_ is None and holds_data(store))


def check(client: Any, prefix: str, store: CounterStore) -> None:
    """For readers: raise LayoutMismatch unless this code can read the store's generation."""
    mark_, verdict = _judged(client, prefix, store)
    if verdict is Verdict.REFUSE:
        raise LayoutMismatch(refusal(store.generation, mark_))


def require(client: Any, prefix: str, store: CounterStore) -> None:
    """For writers: claim an empty unmarked generation, else raise LayoutMismatch unless it is
    marked with this layout."""
    generation = store.generation
    mark_, verdict = _judged(client, prefix, store)
    if verdict is Verdict.CLAIM:
        # HSETNX: two projectors starting together both claim; one racing old code cannot
        # be told apart (an upgrade must not run old and new projectors side by side).
        client.hsetnx(keys.layout_key(prefix), str(generation), str(keys.LAYOUT))
        mark_ = read_mark(client, prefix, generation)
        verdict = judge(mark_, True)
    if verdict is Verdict.REFUSE:
        raise LayoutMismatch(refusal(generation, mark_))
