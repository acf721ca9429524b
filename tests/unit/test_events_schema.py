"""The event type and the strict RFC 3339 / id rules in `events.schema`."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.schema import (
    MAX_EPOCH,
    MIN_EPOCH,
    InvalidEvent,
    RecordCreated,
    format_rfc3339,
    format_utc,
    parse_instant,
    parse_rfc3339,
    plain_instant,
    valid_org_id,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = 1774512000  # 2026-03-26T08:00:00Z


def offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


@pytest.mark.parametrize(
    ("text", "epoch", "micro", "utcoffset_min"),
    [
        ("2026-03-26T08:00:00Z", T0, 0, 0),
        ("2026-03-26t08:00:00z", T0, 0, 0),
        ("2026-03-26T10:00:00+02:00", T0, 0, 120),
        ("2026-03-26T02:30:00-05:30", T0, 0, -330),
        ("2026-03-26T08:00:00-00:00", T0, 0, 0),
        ("2026-03-26T22:00:00+14:00", T0, 0, 840),
        ("2026-03-26T08:00:00.5Z", T0, 500000, 0),
        ("2026-03-26T08:00:00.345Z", T0, 345000, 0),
        ("2026-03-26T08:00:00.123456789Z", T0, 123456, 0),  # truncated, not rounded
        ("2026-03-26T08:00:00.9999999Z", T0, 999999, 0),  # stays in its second
        ("2026-03-26T23:59:59.999Z", T0 + 57599, 999000, 0),
        ("2024-02-29T00:00:00Z", 1709164800, 0, 0),
        ("2000-02-29T00:00:00Z", 951782400, 0, 0),
        ("1970-01-01T00:00:00Z", MIN_EPOCH, 0, 0),
        ("1969-12-31T23:00:00-01:00", MIN_EPOCH, 0, -60),
        ("1970-01-01T23:59:59+23:59", 59, 0, 1439),
        ("9999-12-31T23:59:59Z", MAX_EPOCH, 0, 0),
        ("9999-12-31T23:59:59.999999999Z", MAX_EPOCH, 999999, 0),
        ("9999-12-31T23:59:59+01:00", MAX_EPOCH - 3600, 0, 60),
    ],
)
def test_parse_accepts_rfc3339_with_offset(
    text: str, epoch: int, micro: int, utcoffset_min: int
) -> None:
    moment, second = parse_instant(text)
    assert second == epoch
    assert moment.microsecond == micro
    assert moment.utcoffset() == timedelta(minutes=utcoffset_min)
    assert parse_rfc3339(text) == moment
    assert (moment - EPOCH) // timedelta(seconds=1) == second


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-03-26T08:00:00", "has no UTC offset"),
        ("2026-03-26T08:00:00.123", "has no UTC offset"),
        ("2026-03-26 08:00:00Z", "is not an RFC 3339"),
        ("2026-03-26T08:00Z", "is not an RFC 3339"),
        ("2026-03-26", "is not an RFC 3339"),
        ("2026-03-26T08:00:00.Z", "is not an RFC 3339"),
        ("2026-03-26T08:00:00+0200", "is not an RFC 3339"),
        ("2026-03-26T08:00:00+02", "is not an RFC 3339"),
        ("2026-03-26T08:00:00UTC", "is not an RFC 3339"),
        ("2026-03-26T08:00:00Z\n", "is not an RFC 3339"),
        (" 2026-03-26T08:00:00Z", "is not an RFC 3339"),
        ("", "is not an RFC 3339"),
        ("20260326T080000Z", "is not an RFC 3339"),
        ("2026-3-26T08:00:00Z", "is not an RFC 3339"),
        ("\uff12\uff10\uff12\uff16-03-26T08:00:00Z", "is not an RFC 3339"),  # fullwidth digits
        ("10000-01-01T00:00:00Z", "is not an RFC 3339"),
        ("+2026-03-26T08:00:00Z", "is not an RFC 3339"),
        ("2026-03-26T08:00:60Z", "leap second"),
        ("2016-12-31T23:59:60Z", "leap second"),
        ("2026-03-26T08:00:61Z", "invalid second"),
        ("2026-13-01T00:00:00Z", "invalid month"),
        ("2026-00-01T00:00:00Z", "invalid month"),
        ("2026-02-29T00:00:00Z", "invalid day"),
        ("1900-02-29T00:00:00Z", "invalid day"),
        ("2026-04-31T00:00:00Z", "invalid day"),
        ("2026-03-00T00:00:00Z", "invalid day"),
        ("2026-03-26T24:00:00Z", "invalid time of day"),
        ("2026-03-26T08:60:00Z", "invalid time of day"),
        ("2026-03-26T08:00:00+24:00", "invalid UTC offset"),
        ("2026-03-26T08:00:00+02:60", "invalid UTC offset"),
        ("1969-12-31T23:59:59Z", "is before 1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59.999999Z", "is before 1970-01-01T00:00:00Z"),
        ("1970-01-01T00:30:00+01:00", "is before 1970-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00Z", "is before 1970-01-01T00:00:00Z"),
        ("0000-01-01T00:00:00Z", "is before 1970-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59-01:00", "is after 9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T23:00:00-23:59", "is after 9999-12-31T23:59:59.999999Z"),
    ],
)
def test_parse_rejects_with_a_message_that_says_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_rfc3339(text)
    assert str(caught.value).startswith("timestamp ")


@pytest.mark.parametrize("value", [None, 1774512000, b"2026-03-26T08:00:00Z"])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_rfc3339(value)  # type: ignore[arg-type]


def test_parse_messages_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^start has no UTC offset"):
        parse_instant("2026-03-26T08:00:00", "start")


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_parse_agrees_with_datetime_arithmetic(naive: datetime, minutes: int) -> None:
    moment = naive.replace(tzinfo=offset(minutes))
    parsed, second = parse_instant(moment.isoformat())
    assert parsed == moment
    assert parsed.utcoffset() == moment.utcoffset()
    assert second == (moment - EPOCH) // timedelta(seconds=1)


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (T0, "2026-03-26T08:00:00Z"),
        (951782400, "2000-02-29T00:00:00Z"),
        (MAX_EPOCH, "9999-12-31T23:59:59Z"),
    ],
)
def test_format_utc(epoch: int, text: str) -> None:
    assert format_utc(epoch) == text


@pytest.mark.parametrize(
    ("value", "error"),
    [(-1, ValueError), (MAX_EPOCH + 1, ValueError), (True, TypeError), (1.5, TypeError)],
)
def test_format_utc_rejects_out_of_range_and_non_ints(value: object, error: type) -> None:
    with pytest.raises(error):
        format_utc(value)  # type: ignore[arg-type]


@given(st.integers(min_value=MIN_EPOCH, max_value=MAX_EPOCH))
def test_format_utc_round_trips(epoch: int) -> None:
    assert parse_instant(format_utc(epoch))[1] == epoch


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 3, 26, 8, tzinfo=UTC), "2026-03-26T08:00:00Z"),
        (datetime(2026, 3, 26, 8, 0, 0, 345000, UTC), "2026-03-26T08:00:00.345Z"),
        (datetime(2026, 3, 26, 8, 0, 0, 1000, UTC), "2026-03-26T08:00:00.001Z"),
        (datetime(2026, 3, 26, 8, 0, 0, 123456, UTC), "2026-03-26T08:00:00.123456Z"),
        (datetime(2026, 3, 26, 10, tzinfo=offset(120)), "2026-03-26T10:00:00+02:00"),
        (datetime(2026, 3, 26, 2, 30, tzinfo=offset(-330)), "2026-03-26T02:30:00-05:30"),
        (
            datetime(2026, 3, 26, 8, 0, 30, tzinfo=timezone(timedelta(seconds=30))),
            "2026-03-26T08:00:00Z",
        ),
    ],
)
def test_format_rfc3339_is_lossless(moment: datetime, text: str) -> None:
    assert format_rfc3339(moment) == text
    assert parse_rfc3339(text) == moment


def test_format_rfc3339_rejects_naive() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        format_rfc3339(datetime(2026, 3, 26, 8))


@pytest.mark.parametrize(
    ("org_id", "ok"),
    [
        ("org-bufdir-42", True),
        ("a", True),
        ("7", True),
        ("A" * 128, True),
        ("a-b.c_d:e", True),
        ("a" * 129, False),
        ("", False),
        ("-org", False),
        (".org", False),
        ("_org", False),
        (":org", False),
        ("org{1}", False),
        ("org 1", False),
        ("org/1", False),
        ("org\\1", False),
        ("org\n", False),
        ("org\t1", False),
        ("org\u00e9", False),
        ("\uff11", False),  # fullwidth digit one
        (42, False),
        (None, False),
        (b"org", False),
    ],
)
def test_valid_org_id(org_id: object, ok: bool) -> None:
    assert valid_org_id(org_id) is ok


def event(**changes: object) -> RecordCreated:
    fields: dict[str, object] = {
        "event_id": "e-1",
        "org_id": "org-1",
        "record_id": "rec-1",
        "occurred_at": datetime(2026, 3, 26, 23, 59, 59, 999000, UTC),
    }
    return RecordCreated(**(fields | changes))  # type: ignore[arg-type]


def test_record_created_exposes_the_floor_utc_second() -> None:
    assert event().occurred_second == T0 + 57599
    late = event(occurred_at=datetime(2026, 3, 27, 1, 59, 59, 999999, offset(120)))
    assert late.occurred_second == T0 + 57599
    assert event(occurred_at=EPOCH).occurred_second == 0


def test_record_created_is_frozen_and_compares_by_fields() -> None:
    e = event()
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.org_id = "other"  # type: ignore[misc]
    assert e == event()
    assert dataclasses.replace(e, org_id="org-2").occurred_second == e.occurred_second
    assert [f.name for f in dataclasses.fields(e)] == [
        "event_id",
        "org_id",
        "record_id",
        "occurred_at",
        "schema_version",
    ]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"event_id": ""}, "bad_event_id"),
        ({"event_id": "e" * 129}, "bad_event_id"),
        ({"event_id": "e\x00"}, "bad_event_id"),
        ({"event_id": "e\n1"}, "bad_event_id"),
        ({"event_id": "e\x7f"}, "bad_event_id"),
        ({"event_id": "e\x85"}, "bad_event_id"),
        ({"event_id": "e\ud800"}, "bad_event_id"),
        ({"event_id": 1}, "wrong_type"),
        ({"record_id": ""}, "bad_record_id"),
        ({"record_id": "r" * 129}, "bad_record_id"),
        ({"record_id": "r\x1f"}, "bad_record_id"),
        ({"record_id": None}, "wrong_type"),
        ({"org_id": "-org"}, "bad_org_id"),
        ({"org_id": "o" * 129}, "bad_org_id"),
        ({"org_id": 7}, "wrong_type"),
        ({"occurred_at": datetime(2026, 3, 26)}, "bad_occurred_at"),
        ({"occurred_at": datetime(1969, 12, 31, 23, 59, 59, 999999, UTC)}, "bad_occurred_at"),
        ({"occurred_at": datetime(9999, 12, 31, 23, 59, 59, tzinfo=offset(-1))}, "bad_occurred_at"),
        ({"occurred_at": "2026-03-26T08:00:00Z"}, "wrong_type"),
        ({"schema_version": 2}, "bad_schema_version"),
        ({"schema_version": 0}, "bad_schema_version"),
        ({"schema_version": True}, "wrong_type"),
        ({"schema_version": 1.0}, "wrong_type"),
    ],
)
def test_record_created_rejects_invalid_fields(changes: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        event(**changes)
    assert caught.value.code == code
    (name,) = changes
    assert caught.value.field == name
    assert name in caught.value.message


@pytest.mark.parametrize(
    "changes",
    [
        {"event_id": "e" * 128},
        {"event_id": "\u00e9v\u00e9nement 1 \U0001f600"},
        {"record_id": "r" * 128},
        {"org_id": "o" * 128},
        {"occurred_at": datetime(9999, 12, 31, 23, 59, 59, 999999, UTC)},
    ],
)
def test_record_created_accepts_edge_values(changes: dict[str, object]) -> None:
    assert event(**changes).schema_version == 1


def test_invalid_event_reads_well_and_survives_pickling() -> None:
    error = InvalidEvent("bad_org_id", "org_id '-x' is not valid", "org_id")
    assert str(error) == "bad_org_id: org_id '-x' is not valid"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.field, str(copy)) == (
        error.code,
        error.message,
        error.field,
        str(error),
    )
    assert isinstance(copy, ValueError)


# -- plain_instant: the fast path for the everyday shape ---------------------------------


def assert_instants_agree(text: str) -> None:
    """Where `plain_instant` answers, `parse_instant` gives the same datetime, offset, second."""
    fast = plain_instant(text)
    if fast is None:
        return
    moment, second = parse_instant(text)
    assert fast == (moment, second)
    assert fast[0].utcoffset() == moment.utcoffset()


near_timestamps = st.from_regex(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,8})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?",
    fullmatch=True,
)


@given(near_timestamps)
def test_plain_instant_never_disagrees_with_parse_instant(text: str) -> None:
    assert_instants_agree(text)


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_plain_instant_answers_for_what_producers_write(naive: datetime, minutes: int) -> None:
    text = format_rfc3339(naive.replace(tzinfo=offset(minutes)))
    assert plain_instant(text) is not None
    assert_instants_agree(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-29T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2000-02-29T23:59:59.999999+23:59",
        "1970-01-01T00:00:00Z",
        "1970-01-01T00:00:00+00:01",
        "1969-12-31T23:59:59-00:01",
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59-00:01",
        "2026-03-26T24:00:00Z",
        "2026-03-26T23:60:00Z",
        "2026-03-26T23:59:60Z",
        "2026-03-26T10:00:00+24:00",
        "2026-03-26T10:00:00-00:00",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
    ],
)
def test_plain_instant_edges(text: str) -> None:
    assert_instants_agree(text)
