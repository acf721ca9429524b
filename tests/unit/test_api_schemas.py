"""The API's request and response schemas, table by table (no services needed)."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from api.schemas import (
    CountRequestSchema,
    CountResultSchema,
    ListQuerySchema,
    SnapshotSchema,
    UpdateRequestSchema,
    count_result,
    valid_snapshot_id,
)
from api.snapshots import Snapshot
from events.schema import MAX_EPOCH
from tests.contract import POST_KEYS, SNAPSHOT_KEYS

JAN_1_2026 = 1767225600


def body(start: Any = "2026-01-01T00:00:00Z", end: Any = "2026-01-01T00:00:00Z", **extra: Any):
    return {"org_id": "org-bufdir-42", "range": {"start": start, "end": end}, **extra}


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-01-01T00:00:00Z", JAN_1_2026),
        ("2026-01-01t00:00:00z", JAN_1_2026),
        ("2026-01-01T01:00:00+01:00", JAN_1_2026),
        ("2025-12-31T14:30:00-09:30", JAN_1_2026),
        ("2026-01-01T00:00:00.999999Z", JAN_1_2026),  # truncated to the second, not rounded
        ("2026-01-01T00:00:00.9999999999Z", JAN_1_2026),
        ("1970-01-01T00:00:00Z", 0),
        ("9999-12-31T23:59:59.999Z", MAX_EPOCH),
        ("1970-01-01T00:00:00-01:00", 3600),
        ("9999-12-31T23:59:59+01:00", MAX_EPOCH - 3600),
    ],
)
def test_bounds_parse_to_whole_utc_seconds(text: str, epoch: int) -> None:
    loaded = CountRequestSchema().load(body(text, "9999-12-31T23:59:59Z"))
    assert loaded["range"]["start"] == epoch


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-01-01T00:00:00", "no UTC offset"),
        ("2026-01-01", "not an RFC 3339"),
        ("2026-01-01 00:00:00Z", "not an RFC 3339"),
        ("", "not an RFC 3339"),
        ("yesterday", "not an RFC 3339"),
        (20260101, "must be a string"),
        (None, "may not be null"),
        (["2026-01-01T00:00:00Z"], "must be a string"),
        ("10000-01-01T00:00:00Z", "after 9999-12-31"),
        ("1969-12-31T23:59:59Z", "before 1970"),
        ("1970-01-01T00:59:59+01:00", "before 1970"),
        # In range, but an offset pointing out of it on the first/last day (api/bounds.py).
        ("1970-01-01T01:00:00+01:00", "write it in UTC: 1970-01-01T00:00:00Z"),
        ("1969-12-31T23:00:00-01:00", "write it in UTC: 1970-01-01T00:00:00Z"),
        ("2026-02-30T00:00:00Z", "invalid day"),
        ("2026-13-01T00:00:00Z", "invalid month"),
        ("2026-01-01T24:00:00Z", "invalid time"),
        ("2026-12-31T23:59:60Z", "leap second"),
        ("2026-01-01T00:00:00+24:00", "invalid UTC offset"),
    ],
)
def test_bad_bounds_say_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        CountRequestSchema().load(body(value, "2026-01-02T00:00:00Z"))
    assert message in " ".join(info.value.messages["range"]["start"])


def test_end_past_year_9999_in_utc_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        CountRequestSchema().load(body(end="9999-12-31T23:59:59-00:01"))
    assert "after 9999-12-31" in info.value.messages["range"]["end"][0]


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", True),
        ("2026-01-01T00:00:00.9Z", "2026-01-01T00:00:00.1Z", True),  # same second once truncated
        ("2026-01-01T00:00:01Z", "2026-01-01T00:00:00Z", False),
        ("2026-01-01T00:30:00+01:00", "2026-01-01T00:00:00Z", True),  # 23:30Z before 00:00Z
        ("2026-01-01T00:00:00Z", "2026-01-01T00:30:00+01:00", False),
    ],
)
def test_start_must_not_be_after_end(start: str, end: str, ok: bool) -> None:
    schema = CountRequestSchema()
    if ok:
        schema.load(body(start, end))
        return
    with pytest.raises(ValidationError) as info:
        schema.load(body(start, end))
    assert info.value.messages == {"range": {"_schema": ["start must not be after end"]}}


@pytest.mark.parametrize(
    ("org_id", "ok"),
    [
        ("org-bufdir-42", True),
        ("a", True),
        ("A" * 128, True),
        ("0.org_x:y-z", True),
        ("", False),
        ("A" * 129, False),
        ("x" * 2000, False),
        ("org 42", False),
        ("org/42", False),
        ("{org}", False),
        ("-org", False),
        (".org", False),
        ("org\n", False),
        ("ørg", False),
        ("org%00", False),
        (42, False),
        (None, False),
        ({"id": "x"}, False),
    ],
)
def test_org_id_follows_the_event_contract(org_id: Any, ok: bool) -> None:
    data = body()
    data["org_id"] = org_id
    if ok:
        assert CountRequestSchema().load(data)["org_id"] == org_id
        return
    with pytest.raises(ValidationError) as info:
        CountRequestSchema().load(data)
    assert set(info.value.messages) == {"org_id"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"range": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}, "org_id"),
        ({"org_id": "o"}, "range"),
        (body(color="red"), "color"),
        ({**body(), "range": {"start": "2026-01-01T00:00:00Z"}}, "range"),
        (
            {**body(), "range": {**body()["range"], "step": "1h"}},
            "range",
        ),
        ({**body(), "range": "2026"}, "range"),
        ({**body(), "range": None}, "range"),
    ],
)
def test_count_request_missing_and_unknown_fields(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CountRequestSchema().load(data)
    assert field in info.value.messages


def test_update_request_takes_only_a_range() -> None:
    rng = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    assert UpdateRequestSchema().load({"range": rng}) == {
        "range": {"start": JAN_1_2026, "end": JAN_1_2026 + 86400}
    }
    with pytest.raises(ValidationError) as info:
        UpdateRequestSchema().load({"range": rng, "org_id": "other"})
    assert info.value.messages == {"org_id": ["Unknown field."]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"page": 1, "limit": 20}),
        ({"page": "", "limit": "", "org_id": "", "is_complete": ""}, {"page": 1, "limit": 20}),
        ({"page": "3", "limit": "100"}, {"page": 3, "limit": 100}),
        ({"org_id": "org-1", "is_complete": "true"}, {"org_id": "org-1", "is_complete": True}),
        ({"is_complete": "false"}, {"is_complete": False}),
        ({"is_complete": "0"}, {"is_complete": False}),
        ({"unknown": "ignored"}, {}),
    ],
)
def test_list_query_defaults_and_filters(query: dict[str, str], expected: dict[str, Any]) -> None:
    loaded = ListQuerySchema().load(query)
    assert {**{"page": 1, "limit": 20}, **expected} == loaded


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": "one"}, "page"),
        ({"page": str(2**31)}, "page"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"is_complete": "maybe"}, "is_complete"),
        ({"is_complete": "yes"}, "is_complete"),
        ({"org_id": "org 1"}, "org_id"),
        ({"org_id": "a" * 129}, "org_id"),
    ],
)
def test_list_query_rejects(query: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ListQuerySchema().load(query)
    assert set(info.value.messages) == {field}


SNAPSHOT = Snapshot(
    id="count-snapshot-" + "ab" * 16,
    org_id="org-bufdir-42",
    range_start=JAN_1_2026,
    range_end=JAN_1_2026 + 90 * 86400 - 1,
    record_count=312,
    is_complete=False,
    snapshot_at=1774512000,
)


def test_snapshot_dumps_with_the_contract_keys_in_utc() -> None:
    dumped = SnapshotSchema().dump(SNAPSHOT)
    assert set(dumped) == SNAPSHOT_KEYS
    assert dumped["range_start"] == "2026-01-01T00:00:00Z"
    assert dumped["range_end"] == "2026-03-31T23:59:59Z"
    assert dumped["snapshot_at"] == "2026-03-26T08:00:00Z"


def test_count_result_dumps_the_contract_keys_plus_id() -> None:
    dumped = CountResultSchema().dump(SNAPSHOT)
    assert set(dumped) == POST_KEYS | {"id"}
    assert dumped["range"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-03-31T23:59:59Z"}
    assert dumped["computed_at"] == "2026-03-26T08:00:00Z"


@pytest.mark.parametrize(
    "snapshot",
    [
        SNAPSHOT,
        Snapshot("count-snapshot-" + "f" * 32, "x.y:z_1-2", 0, 0, 0, False, 0),
        Snapshot("count-snapshot-" + "1" * 32, "o", 0, MAX_EPOCH, 2**40, True, MAX_EPOCH),
    ],
)
def test_the_posts_direct_body_is_the_schemas_dump(snapshot: Snapshot) -> None:
    # The view builds the POST body without marshmallow; same keys, order, values and types.
    direct, dumped = count_result(snapshot), CountResultSchema().dump(snapshot)
    assert list(direct.items()) == list(dumped.items())
    assert list(direct["range"].items()) == list(dumped["range"].items())
    assert [type(v) for v in direct.values()] == [type(v) for v in dumped.values()]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("count-snapshot-" + "0" * 32, True),
        ("count-snapshot-" + "A" * 32, False),
        ("count-snapshot-001", False),
        ("count-snapshot-" + "0" * 32 + "\n", False),
        ("../count-snapshot-" + "0" * 32, False),
        ("", False),
    ],
)
def test_snapshot_id_format(value: str, ok: bool) -> None:
    assert valid_snapshot_id(value) is ok
