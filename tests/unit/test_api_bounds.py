"""The bound rule (api/bounds.py) and its pattern in the OpenAPI document accept the same strings.

The oracle is `parse_bound`, the server's own rule; the pattern is checked both as Python reads
it and as schemathesis' validator (jsonschema-rs, ECMA-262 semantics, `format: date-time`
beside it) reads it, since that is what clients and the contract test see.
"""

from __future__ import annotations

import itertools
import re

import jsonschema_rs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from api.bounds import BOUND_PATTERN, UTC_SECOND_PATTERN, parse_bound
from events.schema import MAX_EPOCH, format_utc

PYTHON = re.compile(BOUND_PATTERN)
DOCUMENTED = jsonschema_rs.validator_for(
    {"type": "string", "format": "date-time", "pattern": BOUND_PATTERN}, validate_formats=True
)


def server_accepts(value: str) -> bool:
    try:
        parse_bound(value, "start")
    except ValueError:
        return False
    return True


def assert_same_verdict(value: str) -> None:
    verdict = server_accepts(value)
    assert (PYTHON.fullmatch(value) is not None) is verdict, value
    assert DOCUMENTED.is_valid(value) is verdict, value


# Hand-written verdicts, not computed: each line is a decision of SPEC or of api/bounds.py.
@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("2026-03-26T08:00:00Z", True),
        ("2026-03-26t08:00:00z", True),  # RFC 3339 allows lower case t and z
        ("2026-03-26T08:00:00.123456789+01:00", True),  # any number of fractional digits
        ("2026-03-26T08:00:00.Z", False),
        ("2026-03-26T08:00:00", False),  # no offset
        ("2026-03-26 08:00:00Z", False),
        ("2026-03-26T08:00Z", False),
        ("2026-12-31T23:59:60Z", False),  # leap seconds are not supported
        ("2026-02-29T00:00:00Z", False),
        ("2024-02-29T00:00:00Z", True),
        ("2000-02-29T00:00:00Z", True),
        ("2100-02-29T00:00:00Z", False),
        ("2026-02-30T00:00:00Z", False),
        ("2026-04-31T00:00:00Z", False),
        ("2026-03-26T24:00:00Z", False),
        ("2026-03-26T08:00:00+24:00", False),
        ("2026-03-26T08:00:00+23:59", True),
        ("1970-01-01T00:00:00Z", True),
        ("1970-01-01T00:00:00+00:00", True),
        ("1970-01-01T00:00:00-00:00", True),
        ("1970-01-01T00:00:00-05:00", True),
        ("1970-01-01T05:00:00+05:00", False),  # in range, but a positive offset on the first day
        ("1970-01-01T04:59:59+05:00", False),
        ("1970-01-02T00:00:00+23:59", True),
        ("1969-12-31T23:59:59Z", False),
        ("1969-12-31T23:00:00-01:00", False),  # in range in UTC, but dated 1969
        ("9999-12-31T23:59:59.999999Z", True),
        ("9999-12-31T23:59:59+23:59", True),
        ("9999-12-31T23:59:59-00:00", True),
        ("9999-12-31T00:00:00-00:01", False),  # a negative offset on the last day
        ("9999-12-30T23:59:59-23:59", True),
        ("10000-01-01T00:00:00Z", False),
        ("0238-07-30T04:19:27.5Z", False),  # the examples
        ("1691-02-17T13:03:30.80+16:02", False),
        ("\uff12026-03-26T08:00:00Z", False),  # a fullwidth digit two
        ("2026-03-26T08:00:00Z\n", False),
        ("", False),
    ],
)
def test_verdicts(value: str, accepted: bool) -> None:
    assert server_accepts(value) is accepted
    assert_same_verdict(value)


YEARS = (1968, 1969, 1970, 1971, 1972, 1999, 2000, 2024, 2100, 2400, 9998, 9999)
TIMES = ("00:00:00", "04:59:59", "05:00:00", "12:34:56.5", "19:00:00", "23:59:59.999999")
OFFSETS = ("Z", "z", "+00:00", "-00:00", "+00:01", "-00:01", "+05:00", "-05:00", "+23:59", "-23:59")


@pytest.mark.parametrize("year", YEARS)
def test_every_day_of_the_edge_and_leap_years(year: int) -> None:
    """Days 00-32 of months 00-13, at times and offsets around the edges of the range."""
    for month, day, time, offset in itertools.product(range(14), range(33), TIMES, OFFSETS):
        assert_same_verdict(f"{year:04d}-{month:02d}-{day:02d}T{time}{offset}")


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


# Near misses: every part from a range a little wider than the valid one, each separator
# sometimes wrong, so the strings straddle the rule's edges.
NEAR_BOUNDS = st.builds(
    "{}-{}-{}{}{}:{}:{}{}{}".format,
    st.one_of(st.integers(1960, 1980), st.integers(9990, 9999), st.integers(0, 99999)).map(
        lambda n: f"{n:04d}"
    ),
    _two(0, 13),
    _two(0, 32),
    st.sampled_from(["T", "t", " ", "x"]),
    _two(0, 25),
    _two(0, 61),
    _two(0, 61),
    st.sampled_from(["", ".", ".0", ".999999999", ".5"]),
    st.one_of(
        st.sampled_from(["Z", "z", "", "+", "Zz", "+0000", "-00:00"]),
        st.builds("{}{}:{}".format, st.sampled_from("+-"), _two(0, 25), _two(0, 61)),
    ),
)


@given(NEAR_BOUNDS)
@example("1970-01-01T00:00:00+00:01")
def test_near_misses_get_the_same_verdict(value: str) -> None:
    assert_same_verdict(value)


@given(st.text(alphabet="0123456789-+:.TtZz \n", max_size=40) | st.text(max_size=40))
def test_any_text_gets_the_same_verdict(value: str) -> None:
    assert_same_verdict(value)


@given(st.integers(0, MAX_EPOCH))
def test_every_instant_in_range_in_utc_is_a_bound(epoch: int) -> None:
    text = format_utc(epoch)
    assert parse_bound(text, "end") == epoch
    assert re.fullmatch(UTC_SECOND_PATTERN, text)
    assert_same_verdict(text)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("1970-01-01T05:00:00+05:00", "start on 1970-01-01 must not have a positive UTC offset"),
        ("9999-12-31T00:00:00-00:01", "start on 9999-12-31 must not have a negative UTC offset"),
        ("1969-12-31T23:00:00-01:00", "start is dated before 1970-01-01"),
        ("10000-01-01T00:00:00Z", "start is after 9999-12-31T23:59:59Z"),
        ("1970-01-01T04:59:59+05:00", "start is before 1970-01-01T00:00:00Z"),
    ],
)
def test_refusals_say_why(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_bound(value, "start")
