"""The layout guard's decision: every (mark, data) a generation can be found in."""

from __future__ import annotations

import pytest

from projector import keys
from projector.layout import Verdict, judge, refusal


@pytest.mark.parametrize(
    ("mark", "has_data", "verdict"),
    [
        (keys.LAYOUT, True, Verdict.OK),  # written by this code
        (keys.LAYOUT, False, Verdict.OK),  # marked by a rebuild before its first write
        (None, False, Verdict.CLAIM),  # a new deployment
        (None, True, Verdict.REFUSE),  # written before marks: the old layout
        (1, False, Verdict.REFUSE),  # another layout, even if empty
        (1, True, Verdict.REFUSE),
        (keys.LAYOUT + 1, True, Verdict.REFUSE),  # a later version's
    ],
)
def test_judge(mark: int | None, has_data: bool, verdict: Verdict) -> None:
    assert judge(mark, has_data) is verdict


def test_judge_is_relative_to_the_layout_asked_for() -> None:
    assert judge(3, True, layout=3) is Verdict.OK
    assert judge(keys.LAYOUT, True, layout=3) is Verdict.REFUSE


def test_refusal_names_the_generation_both_layouts_and_the_ways_out() -> None:
    unmarked = refusal(7, None)
    assert "generation 7" in unmarked
    assert "older key layout" in unmarked
    assert f"layout {keys.LAYOUT}" in unmarked
    assert "python -m projector rebuild" in unmarked
    assert "REDIS_KEY_PREFIX" in unmarked
    assert "layout 5;" in refusal(2, 5)
