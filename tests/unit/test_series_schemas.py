"""The series query and response schemas, without services."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from api.series import SeriesQuerySchema, SeriesSchema, series_result
from api.service import SeriesCounts

GOOD = {
    "org_id": "org-bufdir-42",
    "start": "2025-12-31T23:00:00Z",
    "end": "2026-12-31T22:59:59Z",
    "interval": "month",
    "tz": "Europe/Oslo",
}


def load(**changes: Any) -> dict[str, Any]:
    query = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    return SeriesQuerySchema().load(query)


def test_a_good_query_loads_with_its_buckets() -> None:
    query = load()
    assert (query["start"], query["end"]) == (1767222000, 1798757999)
    assert len(query["buckets"]) == 12
    assert load(tz=None)["tz"] == "UTC"
    assert len(load(tz=None)["buckets"]) == 13  # Oslo's year, cut in UTC months


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"tz": "Europe/Atlantis"}, "tz", "IANA time zone"),
        ({"tz": "Z" * 500}, "tz", "IANA time zone"),
        ({"interval": "minute"}, "interval", "one of hour, day, week, month, quarter, year"),
        ({"interval": "hour"}, "interval", "more than 1,000 hour intervals"),
        ({"start": "2027-01-01T00:00:00Z"}, "_schema", "start must not be after end"),
        ({"end": "2026-12-31T22:59:59"}, "end", "no UTC offset"),
        ({"org_id": None}, "org_id", "Missing data"),
    ],
)
def test_bad_queries_say_what_is_wrong(changes: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load(**changes)
    assert says in " ".join(caught.value.messages[field])  # type: ignore[call-overload]


def test_the_direct_body_is_what_the_schema_documents() -> None:
    query = load()
    body = series_result(query, SeriesCounts(list(range(12)), True, 1_790_000_000.7))
    assert SeriesSchema().validate(body) == {}
    assert list(body) == list(SeriesSchema().fields)
    assert body["record_count"] == sum(range(12)) and body["computed_at"] == "2026-09-21T14:13:20Z"
    assert body["buckets"][2] == {
        "start": "2026-03-01T00:00:00+01:00",
        "end": "2026-03-31T23:59:59+02:00",
        "record_count": 2,
    }
    assert body["range"] == {"start": "2025-12-31T23:00:00Z", "end": "2026-12-31T22:59:59Z"}
