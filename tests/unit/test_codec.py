"""Bytes <-> events: every error code, the skip path, and lossless round trips."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.codec import (
    ERROR_CODES,
    MAX_EVENT_BYTES,
    InvalidEvent,
    SkippedEvent,
    _fast,
    _strict,
    decode,
    decode_for_count,
    encode,
)
from events.produce import EXPECTED_ERROR, GeneratedKind, Plan, Summary, generate
from events.schema import EventError, RecordCreated

KEY = b"org-bufdir-42"
EXAMPLE = {
    "schema_version": 1,
    "event_id": "0b6c2f4e-1",
    "type": "record.created",
    "org_id": "org-bufdir-42",
    "record_id": "rec-1001",
    "occurred_at": "2026-03-26T10:44:12.345Z",
}
EXAMPLE_EVENT = RecordCreated(
    event_id="0b6c2f4e-1",
    org_id="org-bufdir-42",
    record_id="rec-1001",
    occurred_at=datetime(2026, 3, 26, 10, 44, 12, 345000, UTC),
)
_DROP = object()


def value(**changes: object) -> bytes:
    doc = {k: v for k, v in (EXAMPLE | changes).items() if v is not _DROP}
    return json.dumps(doc).encode()


def test_decodes_the_contract_example() -> None:
    event = decode(value(), KEY)
    assert event == EXAMPLE_EVENT
    assert isinstance(event, RecordCreated)
    assert event.occurred_second == 1774521852
    assert event.__dict__ == EXAMPLE_EVENT.__dict__  # the fast path builds the same object


def test_key_is_optional_and_unknown_fields_are_ignored() -> None:
    assert decode(value(source="crm", extra={"nested": [1, 2]})) == EXAMPLE_EVENT


@pytest.mark.parametrize(
    "raw",
    [
        value(type="record.deleted"),
        b'{"type":"record.updated"}',
        b'{"type":""}',
        value(type="Record.Created", org_id="not valid!"),
    ],
)
def test_other_types_are_skipped_not_validated(raw: bytes) -> None:
    result = decode(raw, b"whatever")
    assert isinstance(result, SkippedEvent)
    assert result.type == json.loads(raw)["type"]


def test_value_at_the_size_limit_is_decoded() -> None:
    base = value(padding="")
    raw = value(padding="x" * (MAX_EVENT_BYTES - len(base)))
    assert len(raw) == MAX_EVENT_BYTES
    assert decode(raw) == EXAMPLE_EVENT


# Every way a message fails, with the code and field the codec must name.
FAILURES = [
    (None, KEY, "value_missing", None),
    (b" " * (MAX_EVENT_BYTES + 1), KEY, "value_too_large", None),
    (b"{" + b"x" * MAX_EVENT_BYTES, KEY, "value_too_large", None),
    (b"\xff", KEY, "not_utf8", None),
    (b'{"type":"\xed\xa0\x80"}', KEY, "not_utf8", None),  # an encoded surrogate
    (b"", KEY, "not_json", None),
    (b"{", KEY, "not_json", None),
    (b"{'type': 'record.created'}", KEY, "not_json", None),
    (b'{"a": NaN}', KEY, "not_json", None),
    (b'{"a": -Infinity}', KEY, "not_json", None),
    (b"\xef\xbb\xbf" + value(), KEY, "not_json", None),  # UTF-8 BOM
    (b"[" * 16000, KEY, "not_json", None),
    (value() + b"x", KEY, "not_json", None),
    (b'{"type":"a","type":"record.created"}', KEY, "duplicate_field", "type"),
    (value()[:-1] + b',"org_id":"other"}', KEY, "duplicate_field", "org_id"),
    (b"[]", KEY, "not_object", None),
    (b'"record.created"', KEY, "not_object", None),
    (b"1", KEY, "not_object", None),
    (b"null", KEY, "not_object", None),
    (value(type=_DROP), KEY, "missing_field", "type"),
    (value(type=None), KEY, "wrong_type", "type"),
    (value(type=["record.created"]), KEY, "wrong_type", "type"),
    (value(schema_version=_DROP), KEY, "missing_field", "schema_version"),
    (value(schema_version="1"), KEY, "wrong_type", "schema_version"),
    (value(schema_version=1.0), KEY, "wrong_type", "schema_version"),
    (value(schema_version=True), KEY, "wrong_type", "schema_version"),
    (value(schema_version=2), KEY, "bad_schema_version", "schema_version"),
    (value(schema_version=0), KEY, "bad_schema_version", "schema_version"),
    (value(event_id=_DROP), KEY, "missing_field", "event_id"),
    (value(event_id=5), KEY, "wrong_type", "event_id"),
    (value(event_id=""), KEY, "bad_event_id", "event_id"),
    (value(event_id="e" * 129), KEY, "bad_event_id", "event_id"),
    (value(event_id="e\u0000"), KEY, "bad_event_id", "event_id"),
    (value(event_id="e\ud800"), KEY, "bad_event_id", "event_id"),
    (value(org_id=_DROP), KEY, "missing_field", "org_id"),
    (value(org_id=None), KEY, "wrong_type", "org_id"),
    (value(org_id="-org"), b"-org", "bad_org_id", "org_id"),
    (value(org_id="org 42"), b"org 42", "bad_org_id", "org_id"),
    (value(org_id="o" * 129), None, "bad_org_id", "org_id"),
    (value(record_id=_DROP), KEY, "missing_field", "record_id"),
    (value(record_id=[]), KEY, "wrong_type", "record_id"),
    (value(record_id=""), KEY, "bad_record_id", "record_id"),
    (value(record_id="r\x1b[31m"), KEY, "bad_record_id", "record_id"),
    (value(occurred_at=_DROP), KEY, "missing_field", "occurred_at"),
    (value(occurred_at=1774521852), KEY, "wrong_type", "occurred_at"),
    (value(occurred_at="2026-03-26T10:44:12.345"), KEY, "bad_occurred_at", "occurred_at"),
    (value(occurred_at="2026-03-26T10:44:60Z"), KEY, "bad_occurred_at", "occurred_at"),
    (value(occurred_at="1969-12-31T23:59:59Z"), KEY, "bad_occurred_at", "occurred_at"),
    (value(occurred_at="26 Mar 2026 10:44:12 GMT"), KEY, "bad_occurred_at", "occurred_at"),
    (value(), b"org-bufdir-43", "key_mismatch", None),
    (value(), b"", "key_mismatch", None),
    (value(), b"\xff", "key_mismatch", None),
]


def test_error_codes_lists_exactly_the_codes_the_codec_raises() -> None:
    assert {code for _, _, code, _ in FAILURES} == set(ERROR_CODES)


@pytest.mark.parametrize(("raw", "key", "code", "field"), FAILURES)
def test_every_failure_has_a_precise_code(
    raw: bytes | None, key: bytes | None, code: str, field: str | None
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(raw, key)
    assert caught.value.code == code
    assert caught.value.field == field
    if field is not None:
        assert field in caught.value.message
    assert isinstance(caught.value, EventError)


def test_checks_run_in_field_order() -> None:
    with pytest.raises(InvalidEvent, match="schema_version"):
        decode(value(schema_version=2, event_id="", org_id="-"))
    with pytest.raises(InvalidEvent, match="bad_org_id"):
        decode(value(org_id="-", occurred_at="naive"), b"other")


def test_encode_is_compact_utf8_json_keyed_by_org() -> None:
    key, raw = encode(EXAMPLE_EVENT)
    assert key == KEY
    assert raw == json.dumps(EXAMPLE, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 3, 26, 10, 44, 12, tzinfo=UTC), "2026-03-26T10:44:12Z"),
        (datetime(2026, 3, 26, 10, 44, 12, 5000, UTC), "2026-03-26T10:44:12.005Z"),
        (datetime(2026, 3, 26, 10, 44, 12, 5, UTC), "2026-03-26T10:44:12.000005Z"),
        (
            datetime(2026, 3, 26, 12, 44, 12, tzinfo=timezone(timedelta(hours=2))),
            "2026-03-26T12:44:12+02:00",
        ),
    ],
)
def test_encode_writes_occurred_at_losslessly(moment: datetime, text: str) -> None:
    event = RecordCreated("e", "org", "r", moment)
    assert json.loads(encode(event)[1])["occurred_at"] == text


def test_encode_keeps_non_ascii_ids_as_utf8() -> None:
    event = RecordCreated("\u00e9v-1", "org", "r\u00e9c", datetime(2026, 3, 26, tzinfo=UTC))
    raw = encode(event)[1]
    assert "\u00e9v-1".encode() in raw
    assert decode(raw, b"org") == event


# Cc is every control character (C0, DEL and C1); Cs the surrogates.
ids = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=128)
org_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", fullmatch=True)
moments = st.builds(
    lambda naive, minutes: naive.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)


@given(st.builds(RecordCreated, ids, org_ids, ids, moments))
def test_encode_decode_round_trip(event: RecordCreated) -> None:
    key, raw = encode(event)
    back = decode(raw, key)
    assert back == event
    assert isinstance(back, RecordCreated)
    assert back.occurred_second == event.occurred_second
    assert back.occurred_at.utcoffset() == event.occurred_at.utcoffset()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


any_objects = st.fixed_dictionaries(
    {}, optional={name: json_values | st.just(good) for name, good in EXAMPLE.items()}
)
any_keys = st.one_of(st.none(), st.just(KEY), st.binary(max_size=8))


@given(st.binary(max_size=300))
def test_decode_of_any_bytes_returns_or_raises_invalid_event(raw: bytes) -> None:
    try:
        decode(raw)
    except InvalidEvent as exc:
        assert exc.code


def test_generated_messages_decode_as_their_kind_says() -> None:
    plan = Plan(
        orgs=("org-a", "org-b", "org-c"),
        count=3000,
        start_ms=1774483200000,
        end_ms=1774569599999,
        pattern="bursty",
        duplicate_ratio=0.1,
        invalid_ratio=0.2,
        seed=11,
    )
    summary = Summary(events=[])
    originals: dict[str, RecordCreated] = {}
    for key, raw, kind in generate(plan, summary):
        if kind in EXPECTED_ERROR:
            with pytest.raises(InvalidEvent) as caught:
                decode(raw, key)
            assert caught.value.code == EXPECTED_ERROR[kind]
            continue
        event = decode(raw, key)
        assert isinstance(event, RecordCreated)
        if kind is GeneratedKind.DUPLICATE:
            assert originals[event.event_id] == event
        else:
            assert event.event_id not in originals
            originals[event.event_id] = event
    assert (summary.sent, summary.duplicates, sum(summary.invalid.values())) == (3000, 300, 600)
    assert set(summary.invalid) == {str(kind) for kind in EXPECTED_ERROR}
    assert sorted(summary.events or []) == sorted(
        (e.org_id, e.occurred_second) for e in originals.values()
    )
    by_org: dict[str, int] = {}
    for e in originals.values():
        by_org[e.org_id] = by_org.get(e.org_id, 0) + 1
    assert summary.valid == by_org
    assert list(generate(plan)) == list(generate(plan))  # deterministic for a seed


# -- the fast path (orjson) never disagrees with the strict one --------------------------


def _verdict(call: Callable[..., object], raw: bytes | None, key: bytes | None) -> object:
    try:
        return ("ok", call(raw, key))
    except InvalidEvent as exc:
        return ("error", exc.code, exc.message, exc.field)


def assert_paths_agree(raw: bytes, key: bytes | None) -> None:
    """Where `_fast` answers, `_strict` accepts the same fields; both public decoders agree."""
    fast = _fast(raw, key)
    strict = _verdict(_strict, raw, key)
    if fast is not None:
        assert strict[0] == "ok", (raw, strict)
        event = strict[1]
        assert isinstance(event, RecordCreated)
        assert fast == (
            event.event_id,
            event.org_id,
            event.record_id,
            event.occurred_at,
            event.occurred_second,
        )
        assert fast[3].utcoffset() == event.occurred_at.utcoffset()
    full = _verdict(decode, raw, key)
    counted = _verdict(decode_for_count, raw, key)
    assert full == strict
    if full[0] == "ok" and isinstance(full[1], RecordCreated):
        ev = full[1]
        assert counted == ("ok", (ev.org_id, ev.event_id, ev.occurred_second))
    else:
        assert counted == full


def compact(doc: object) -> bytes:
    """JSON the way producers write it: no spaces, non-ASCII as UTF-8 (no escapes)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def test_fast_path_takes_the_everyday_message() -> None:
    raw = compact(EXAMPLE)
    assert _fast(raw, KEY) is not None
    assert_paths_agree(raw, KEY)


EX = compact(EXAMPLE)[1:-1].decode()
AT = EXAMPLE["occurred_at"]


def swap(old: str, new: str) -> str:
    """The example's compact text with `old` replaced by `new`."""
    return "{" + EX.replace(old, new) + "}"


@pytest.mark.parametrize(
    "raw",
    [
        # the same field twice: equal values, different values, different types
        "{" + EX + ',"org_id":"org-bufdir-42"}',
        "{" + EX + ',"org_id":"org-other"}',
        "{" + EX + ',"schema_version":1}',
        "{" + EX + ',"schema_version":"1"}',
        '{"type":"record.created",' + EX + "}",
        '{"x" : 1,"x":2,' + EX + "}",
        "{" + EX.replace('"org_id":', '"org_id" :') + ',"org_id":"org-bufdir-42"}',
        # escapes, nesting, numbers orjson reads differently from json
        swap("rec-1001", "rec-\\u0031001"),
        swap("rec-1001", 'rec-\\"1001'),
        "{" + EX + ',"extra":{"a":[1,2]}}',
        "{" + EX + ',"extra":123456789012345678901234567890}',
        "{" + EX + ',"extra":1e400}',
        swap('"schema_version":1', '"schema_version":1.0'),
        swap('"schema_version":1', '"schema_version":true'),
        # timestamps just outside the plain shape, valid and not
        swap(AT, "2026-03-26t10:44:12.345z"),
        swap(AT, "2026-03-26T10:44:12.3456789Z"),
        swap(AT, "2026-02-30T10:44:12Z"),
        swap(AT, "2026-03-26T10:44:60Z"),
        swap(AT, "2026-03-26T10:44:12"),
        swap(AT, "1970-01-01T00:00:00+00:01"),
        swap(AT, "2026-03-26 10:44:12Z"),
        # text the two parsers might treat differently
        "{" + EX + "}   ",
        "\ufeff{" + EX + "}",
        swap("rec-1001", "rec-\x01"),
        swap("rec-1001", "rec-\u0085"),
        swap("rec-1001", "rec-é—ü"),
        "{" + EX + ',"NaN":NaN}',
        "[" + EX + "]",
    ],
)
def test_fast_and_strict_paths_agree_on_edge_cases(raw: str) -> None:
    assert_paths_agree(raw.encode(), KEY)
    assert_paths_agree(raw.encode(), None)
    assert_paths_agree(raw.encode(), b"org-other")


def test_fast_path_refuses_encoded_surrogates_and_bad_utf8() -> None:
    for bad in (b"\xed\xa0\x80", b"\xff", b"\xc0\xaf"):
        raw = EX.replace("rec-1001", "rec-X").encode().replace(b"X", bad)
        assert_paths_agree(b"{" + raw + b"}", KEY)


@given(any_objects, any_keys)
def test_any_object_decodes_or_raises_invalid_event_the_same_on_both_paths(
    doc: dict[str, object], key: bytes | None
) -> None:
    # json.dumps escapes non-ASCII (strict path); compact() does not (fast path when valid).
    for raw in (json.dumps(doc).encode(), compact(doc)):
        assert_paths_agree(raw, key)


@given(st.builds(RecordCreated, ids, org_ids, ids, moments), st.data())
def test_fast_and_strict_paths_agree_on_valid_events_and_their_mutations(
    event: RecordCreated, data: st.DataObject
) -> None:
    key, raw = encode(event)
    assert_paths_agree(raw, key)
    position = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.binary(min_size=1, max_size=4))
    assert_paths_agree(raw[:position] + junk + raw[position:], key)
    assert_paths_agree(raw[:position] + raw[position + 1 :], key)
