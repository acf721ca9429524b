"""The `record.created` event and the strict, pure validation rules its producers and readers share.

Field rules (SPEC.md, "Event contract"), and the decisions it leaves open:

- `org_id`: 1-128 ASCII characters of `A-Z a-z 0-9 . _ : -`, starting with a letter or digit.
- `event_id`, `record_id`: 1-128 characters (code points), any Unicode except control
  characters (C0, DEL, C1) and lone surrogates: these ids end up in Redis keys, logs and
  headers, where control characters and unencodable text do harm. Spaces are allowed.
- `occurred_at`: RFC 3339 date-time with an offset (`Z`/`z` or `±hh:mm`), `T` or `t` between
  date and time, any number of fractional digits (truncated to microseconds, never rounded),
  no leap second (`:60`), and an instant within 1970-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z.
  The datetime keeps the offset it was given; `occurred_second` is its UTC epoch second (floor).
- `schema_version`: exactly the integer 1 (`true` is not 1).

`parse_rfc3339`, `parse_instant` and `format_utc` are general: the API uses them for range bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cached_property

# The definitions below are the contract: the codec checks them and events/contract.py writes
# the JSON Schema (events/record-created.schema.json) from them. Character classes are kept as
# regex source that Python's `re` and ECMA-262 (JSON Schema's dialect) read alike.
EVENT_TYPE = "record.created"
SCHEMA_VERSION = 1
MAX_ID_LENGTH = 128
ORG_ID_FIRST_CHARS = "A-Za-z0-9"
ORG_ID_CHARS = "A-Za-z0-9._:-"
ORG_ID_PATTERN = f"^[{ORG_ID_FIRST_CHARS}][{ORG_ID_CHARS}]{{0,{MAX_ID_LENGTH - 1}}}$"
# What event_id and record_id may not contain: C0 controls, DEL and C1 controls...
ID_CONTROL_CHARS = r"\x00-\x1f\x7f-\x9f"
# ...nor a lone surrogate, which only a parser that lets one through (Python's json does)
# can deliver. The JSON Schema leaves this part out: not every regex dialect can write it.
ID_SURROGATE_CHARS = r"\ud800-\udfff"
# The JSON Schema of the message value, written from these definitions by events/contract.py
# beside this module and shipped as package data.
JSON_SCHEMA_FILE = "record-created.schema.json"
MIN_EPOCH = 0
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Public for the codec's fast path, which must accept exactly what the checks below accept.
ORG_ID_OK = re.compile(ORG_ID_PATTERN).fullmatch
ID_FORBIDDEN = re.compile(f"[{ID_CONTROL_CHARS}{ID_SURROGATE_CHARS}]").search
# Every part is ASCII ([0-9], not \d, which also matches other scripts' digits); the offset is
# optional here only so that a naive timestamp gets its own message.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
).fullmatch
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TZ_CACHE: dict[int, timezone] = {0: UTC}


class EventError(Exception):
    """Base class of every error the `events` package raises."""


class InvalidEvent(EventError, ValueError):
    """An event that breaks the contract; `code` is stable, `message` names the field."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(code, message, field)  # args that rebuild it: picklable
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class RecordCreated:
    """A record was created in an upstream system; validated on construction."""

    event_id: str
    org_id: str
    record_id: str
    occurred_at: datetime
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_id("event_id", self.event_id)
        check_org_id(self.org_id)
        check_id("record_id", self.record_id)
        second = check_occurred_at(self.occurred_at)
        check_schema_version(self.schema_version)
        # Prime the cached property: the range check has just computed it.
        self.__dict__["occurred_second"] = second

    @cached_property
    def occurred_second(self) -> int:
        """`occurred_at` as whole UTC epoch seconds (floor)."""
        return (self.occurred_at - _EPOCH) // _SECOND


def trusted_record_created(
    event_id: str, org_id: str, record_id: str, occurred_at: datetime, second: int
) -> RecordCreated:
    """Build an event from fields already checked with this module's checks (the codec's path)."""
    event = object.__new__(RecordCreated)
    event.__dict__.update(
        event_id=event_id,
        org_id=org_id,
        record_id=record_id,
        occurred_at=occurred_at,
        schema_version=SCHEMA_VERSION,
        occurred_second=second,
    )
    return event


def valid_org_id(value: object) -> bool:
    """Whether `value` is a well-formed org id."""
    return type(value) is str and ORG_ID_OK(value) is not None


_JSON_TYPE_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def type_name(value: object) -> str:
    """The JSON name of a decoded value's type (`null`, `number`, …), else the Python name."""
    return _JSON_TYPE_NAMES.get(type(value)) or type(value).__name__


def check_id(name: str, value: object) -> str:
    """Return `value` if it is a valid event_id/record_id; else raise InvalidEvent."""
    if type(value) is not str:
        raise InvalidEvent("wrong_type", f"{name} must be a string, got {type_name(value)}", name)
    if not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidEvent(
            f"bad_{name}", f"{name} must be 1-{MAX_ID_LENGTH} characters, got {len(value)}", name
        )
    if ID_FORBIDDEN(value) is not None:
        raise InvalidEvent(
            f"bad_{name}", f"{name} contains a control character or lone surrogate", name
        )
    return value


def check_org_id(value: object) -> str:
    """Return `value` if it is a valid org_id; else raise InvalidEvent."""
    if type(value) is not str:
        raise InvalidEvent(
            "wrong_type", f"org_id must be a string, got {type_name(value)}", "org_id"
        )
    if ORG_ID_OK(value) is None:
        raise InvalidEvent(
            "bad_org_id",
            f"org_id {value[:140]!r} must be 1-128 characters of A-Z a-z 0-9 . _ : - "
            "starting with a letter or digit",
            "org_id",
        )
    return value


def check_schema_version(value: object) -> int:
    """Return `value` if it is the supported schema version; else raise InvalidEvent."""
    if type(value) is not int:
        raise InvalidEvent(
            "wrong_type",
            f"schema_version must be an integer, got {type_name(value)}",
            "schema_version",
        )
    if value != SCHEMA_VERSION:
        raise InvalidEvent(
            "bad_schema_version",
            f"schema_version {value} is not supported (expected {SCHEMA_VERSION})",
            "schema_version",
        )
    return value


def check_occurred_at(value: object) -> int:
    """Return the UTC epoch second of an aware, in-range datetime; else raise InvalidEvent."""
    if not isinstance(value, datetime):
        raise InvalidEvent(
            "wrong_type",
            f"occurred_at must be a datetime, got {type_name(value)}",
            "occurred_at",
        )
    if value.utcoffset() is None:
        raise InvalidEvent("bad_occurred_at", "occurred_at has no UTC offset", "occurred_at")
    second = (value - _EPOCH) // _SECOND
    if second < MIN_EPOCH:
        raise InvalidEvent(
            "bad_occurred_at", "occurred_at is before 1970-01-01T00:00:00Z", "occurred_at"
        )
    if second > MAX_EPOCH:
        raise InvalidEvent(
            "bad_occurred_at", "occurred_at is after 9999-12-31T23:59:59.999999Z", "occurred_at"
        )
    return second


def _offset_tz(minutes: int) -> timezone:
    tz = _TZ_CACHE.get(minutes)
    if tz is None:
        tz = _TZ_CACHE[minutes] = timezone(timedelta(minutes=minutes))
    return tz


def parse_instant(value: str, name: str = "timestamp") -> tuple[datetime, int]:
    """Parse an RFC 3339 date-time with offset into (datetime as given, UTC epoch second).

    Raises ValueError with a message that starts with `name` and says what is wrong.
    """
    if type(value) is not str:
        raise ValueError(f"{name} must be a string, got {type_name(value)}")
    m = _RFC3339(value)
    if m is None:
        raise ValueError(f"{name} is not an RFC 3339 date-time (like 2026-03-26T08:00:00Z)")
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, zulu, sign, oh, om = m.groups()
    if zulu is None and sign is None:
        raise ValueError(f"{name} has no UTC offset (add Z or ±hh:mm)")
    year, month, day = int(year_s), int(month_s), int(day_s)
    hour, minute, sec = int(hour_s), int(minute_s), int(second_s)
    if not 1 <= month <= 12:
        raise ValueError(f"{name} has an invalid month")
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month] + leap:
        raise ValueError(f"{name} has an invalid day of the month")
    if hour > 23 or minute > 59:
        raise ValueError(f"{name} has an invalid time of day")
    if sec > 59:
        raise ValueError(
            f"{name} has a leap second (:60), which is not supported"
            if sec == 60
            else f"{name} has an invalid second"
        )
    offset = 0
    if sign is not None:
        offset_h, offset_m = int(oh), int(om)
        if offset_h > 23 or offset_m > 59:
            raise ValueError(f"{name} has an invalid UTC offset")
        offset = offset_h * 60 + offset_m
        if sign == "-":
            offset = -offset
    # Year 1968 or earlier is out of range whatever the offset (at most ±23:59); checking first
    # also keeps years 0000-0968 away from `date`, which starts at year 1.
    if year < 1969:
        raise ValueError(f"{name} is before 1970-01-01T00:00:00Z")
    days = date(year, month, day).toordinal() - _UNIX_EPOCH_ORDINAL
    epoch = days * 86400 + hour * 3600 + minute * 60 + sec - offset * 60
    if epoch < MIN_EPOCH:
        raise ValueError(f"{name} is before 1970-01-01T00:00:00Z")
    if epoch > MAX_EPOCH:
        raise ValueError(f"{name} is after 9999-12-31T23:59:59.999999Z")
    micro = 0
    if fraction is not None:
        # Truncate, never round: ….9999999 stays in its second.
        micro = int(fraction[:6].ljust(6, "0"))
    return datetime(year, month, day, hour, minute, sec, micro, _offset_tz(offset)), epoch


# The everyday shape only: upper-case T and Z, at most microseconds, fields in range.
_PLAIN_RFC3339 = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
).fullmatch
_FROM_ISO = datetime.fromisoformat


def plain_instant(value: str) -> tuple[datetime, int] | None:
    """`parse_instant(value)` for its everyday shape, in C and ~4x faster; None for the rest.

    None says nothing about validity: ask `parse_instant`. Where this answers, it answers
    exactly as `parse_instant` would (tests/unit/test_events_schema.py compares the two).
    """
    if _PLAIN_RFC3339(value) is None:
        return None
    try:
        moment = _FROM_ISO(value)  # checks the day of the month, Feb 29 included
    except ValueError:
        return None
    epoch = (moment - _EPOCH) // _SECOND
    if not MIN_EPOCH <= epoch <= MAX_EPOCH:
        return None
    return moment, epoch


def parse_rfc3339(value: str, name: str = "timestamp") -> datetime:
    """Parse an RFC 3339 date-time with offset; the datetime keeps the given offset.

    Raises ValueError with a message that starts with `name` and says what is wrong.
    """
    return parse_instant(value, name)[0]


def format_rfc3339(value: datetime) -> str:
    """Format an aware datetime as RFC 3339, losslessly: `Z` for UTC, milliseconds when exact."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("datetime has no UTC offset")
    minutes, rest = divmod(offset, timedelta(minutes=1))
    if rest:  # RFC 3339 offsets are whole minutes: say the same instant in UTC instead.
        value, minutes = value.astimezone(UTC), 0
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    micro = value.microsecond
    if micro:
        text += f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
    if minutes == 0:
        return text + "Z"
    sign = "+" if minutes > 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{mins:02d}"


def format_utc(epoch_seconds: int) -> str:
    """Format whole UTC epoch seconds as RFC 3339 with `Z`, e.g. `2026-03-26T08:00:00Z`."""
    if type(epoch_seconds) is not int:
        raise TypeError(f"epoch_seconds must be an int, got {type_name(epoch_seconds)}")
    if not MIN_EPOCH <= epoch_seconds <= MAX_EPOCH:
        raise ValueError(f"epoch_seconds {epoch_seconds} is outside {MIN_EPOCH}..{MAX_EPOCH}")
    days, rest = divmod(epoch_seconds, 86400)
    d = date.fromordinal(_UNIX_EPOCH_ORDINAL + days)
    hour, rest = divmod(rest, 3600)
    minute, sec = divmod(rest, 60)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{hour:02d}:{minute:02d}:{sec:02d}Z"
