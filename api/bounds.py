"""What the API takes as a range bound: the rule, and the same rule as a JSON Schema pattern.

A bound is an RFC 3339 date-time with an offset (`Z`/`z` or `±hh:mm`, `T` or `t`, any number of
fractional digits, no leap second), dated 1970-01-01..9999-12-31 as written, where a bound dated
1970-01-01 has no positive offset and one dated 9999-12-31 no negative one. Every such bound is an
instant inside 1970-01-01T00:00:00Z..9999-12-31T23:59:59Z, and every instant there has such a
spelling (in UTC at least).

Why the rule on the first and the last day: on those days whether an offset carries the instant
out of the range depends on the time of day and the offset together (1970-01-01T05:00:00+05:00 is
in, 1970-01-01T04:59:59+05:00 is out). A pattern can compare the two only by listing every pair,
some thousands of alternatives, while the OpenAPI document must state exactly what the server
accepts (docs/design.md, "Range bounds"). So those two days take only offsets that point into the
range, and `BOUND_PATTERN` is an exact, readable statement of the rule.
"""

from __future__ import annotations

import re
from datetime import timedelta

from events.schema import format_utc, parse_instant

FIRST_DAY = (1970, 1, 1)
LAST_DAY = (9999, 12, 31)
_ZERO = timedelta(0)
_FIVE_DIGIT_YEAR = re.compile(r"[0-9]{5,}-").match

# The pieces of the pattern. Digits are ASCII classes, never \d (which ECMA-262 and Python read
# differently); every part is plain ECMA-262, in the subset JSON Schema recommends.
_HH_MM = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_TIME = rf"[Tt]{_HH_MM}:[0-5][0-9](?:\.[0-9]+)?"
_ANY_OFFSET = rf"(?:[Zz]|[+-]{_HH_MM})"
_NOT_POSITIVE = rf"(?:[Zz]|-{_HH_MM}|\+00:00)"
_NOT_NEGATIVE = rf"(?:[Zz]|\+{_HH_MM}|-00:00)"
_DAY_28 = r"(?:0[1-9]|1[0-9]|2[0-8])"
_DAY_30 = r"(?:0[1-9]|[12][0-9]|30)"
_DAY_31 = r"(?:0[1-9]|[12][0-9]|3[01])"
_SHORT_MONTHS = rf"(?:0[469]|11)-{_DAY_30}|02-{_DAY_28}"
# Month and day in a year, February 29 apart; then the same without January 1 / December 31.
_MONTH_DAY = rf"(?:(?:0[13578]|1[02])-{_DAY_31}|{_SHORT_MONTHS})"
_MONTH_DAY_NOT_JAN_1 = (
    rf"(?:01-(?:0[2-9]|[12][0-9]|3[01])|(?:0[3578]|1[02])-{_DAY_31}|{_SHORT_MONTHS})"
)
_MONTH_DAY_NOT_DEC_31 = rf"(?:(?:0[13578]|10)-{_DAY_31}|12-{_DAY_30}|{_SHORT_MONTHS})"
_YEARS_1971_TO_9998 = r"(?:197[1-9]|19[89][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
# Gregorian leap years from 1970 to 9999: divisible by 4, centuries only when divisible by 400.
_LEAP_YEARS = (
    r"(?:19(?:7[26]|8[048]|9[26])"
    r"|[2-9][0-9](?:0[48]|[2468][048]|[13579][26])"
    r"|(?:[2468][048]|[3579][26])00)"
)
_INNER_DAYS = (
    rf"(?:{_YEARS_1971_TO_9998}-{_MONTH_DAY}|{_LEAP_YEARS}-02-29"
    rf"|1970-{_MONTH_DAY_NOT_JAN_1}|9999-{_MONTH_DAY_NOT_DEC_31})"
)
BOUND_PATTERN = (
    rf"^(?:{_INNER_DAYS}{_TIME}{_ANY_OFFSET}"
    rf"|1970-01-01{_TIME}{_NOT_POSITIVE}"
    rf"|9999-12-31{_TIME}{_NOT_NEGATIVE})$"
)
BOUND_RULE = (
    "RFC 3339 with an offset, dated 1970-01-01..9999-12-31, within 1970-01-01T00:00:00Z.."
    "9999-12-31T23:59:59Z: on 1970-01-01 no positive offset, on 9999-12-31 no negative one. "
    "Truncated to the whole second; inclusive."
)
# What responses carry (SPEC): UTC with `Z`, whole seconds; `format: date-time` checks the fields.
UTC_SECOND_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"


def parse_bound(value: object, name: str) -> int:
    """The UTC epoch second of a range bound; ValueError starting with `name` says what is wrong."""
    try:
        moment, epoch = parse_instant(value, name)  # type: ignore[arg-type]  # it checks the type
    except ValueError as exc:
        if isinstance(value, str) and _FIVE_DIGIT_YEAR(value):
            # RFC 3339 has no such year; say which limit it breaks, as SPEC asks.
            raise ValueError(f"{name} is after 9999-12-31T23:59:59Z") from exc
        raise
    day = (moment.year, moment.month, moment.day)
    offset = moment.utcoffset() or _ZERO
    if day < FIRST_DAY:
        # parse_instant let it through, so a negative offset brings it to 1970-01-01 in UTC.
        raise ValueError(f"{name} is dated before 1970-01-01; write it in UTC: {format_utc(epoch)}")
    if day == FIRST_DAY and offset > _ZERO:
        raise ValueError(
            f"{name} on 1970-01-01 must not have a positive UTC offset (it could fall before "
            f"1970-01-01T00:00:00Z); write it in UTC: {format_utc(epoch)}"
        )
    if day == LAST_DAY and offset < _ZERO:
        raise ValueError(
            f"{name} on 9999-12-31 must not have a negative UTC offset (it could fall after "
            f"9999-12-31T23:59:59Z); write it in UTC: {format_utc(epoch)}"
        )
    return epoch
