"""Marshmallow schemas of the API: request validation, response shapes, and the OpenAPI doc."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_dump,
    pre_load,
    validate,
    validates_schema,
)
from werkzeug.routing import BaseConverter

from events.schema import ORG_ID_PATTERN, format_utc, parse_instant

SNAPSHOT_ID_PATTERN = r"count-snapshot-[0-9a-f]{32}"
MAX_PAGE = 2**31 - 1
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
_FIVE_DIGIT_YEAR = re.compile(r"[0-9]{5,}-").match
ORG_ID_RULE = "1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"


class Instant(fields.Field):
    """An RFC 3339 date-time with offset in, whole UTC epoch seconds inside, `…Z` out."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        name = self.name or "timestamp"
        try:
            return parse_instant(value, name)[1]
        except ValueError as exc:
            if isinstance(value, str) and _FIVE_DIGIT_YEAR(value):
                # RFC 3339 has no such year; say which limit it breaks, as SPEC asks.
                raise ValidationError(f"{name} is after 9999-12-31T23:59:59Z") from exc
            raise ValidationError(str(exc)) from exc

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_utc(value)


class FullMatch(validate.Regexp):
    """`Regexp` that must match the whole string (marshmallow's `match` lets `$` pass a `\\n`)."""

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def org_id_field(pattern: str = ORG_ID_PATTERN, note: str = "", **kwargs: Any) -> fields.String:
    """An org id: the event contract's pattern, documented and enforced."""
    return fields.String(
        validate=FullMatch(pattern, error=f"org_id must be {ORG_ID_RULE}."),
        metadata={
            "example": "org-bufdir-42",
            "description": f"Organisation id: {ORG_ID_RULE}.{note}",
        },
        **kwargs,
    )


class SnapshotIdConverter(BaseConverter):
    """URL converter for snapshot ids; any other path segment is a 404."""

    regex = SNAPSHOT_ID_PATTERN


def snapshot_id_param_schema(converter: BaseConverter) -> dict[str, str]:
    """The OpenAPI schema of a snapshot id path parameter."""
    return {"type": "string", "pattern": f"^{SNAPSHOT_ID_PATTERN}$"}


def valid_snapshot_id(value: str) -> bool:
    """Whether `value` has the form of a snapshot id."""
    return re.fullmatch(SNAPSHOT_ID_PATTERN, value) is not None


class StrictSchema(Schema):
    """A request body schema: unknown fields are errors (422)."""

    class Meta:
        unknown = RAISE


BOUND = (
    "RFC 3339 with an offset, within 1970-01-01T00:00:00Z..9999-12-31T23:59:59Z, truncated to "
    "the whole second; inclusive."
)


class RangeSchema(StrictSchema):
    """An inclusive time range; bounds are truncated to the whole UTC second."""

    start = Instant(
        required=True, metadata={"example": "2026-01-01T00:00:00Z", "description": BOUND}
    )
    end = Instant(
        required=True,
        metadata={"example": "2026-03-31T23:59:59Z", "description": BOUND + " Not before start."},
    )

    @validates_schema
    def _start_not_after_end(self, data: dict[str, int], **kwargs: Any) -> None:
        if data["start"] > data["end"]:
            raise ValidationError("start must not be after end")


class CountRequestSchema(StrictSchema):
    """Body of `POST /`: which org, which range."""

    org_id = org_id_field(required=True)
    range = fields.Nested(RangeSchema, required=True)


class UpdateRequestSchema(StrictSchema):
    """Body of `PUT /{id}`: the snapshot's new range."""

    range = fields.Nested(RangeSchema, required=True)


class ListQuerySchema(Schema):
    """Query of `GET /`; empty values mean "not given", as in `?org_id=&is_complete=`."""

    page = fields.Integer(
        load_default=1, validate=validate.Range(min=1, max=MAX_PAGE), metadata={"example": 1}
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"example": DEFAULT_LIMIT},
    )
    # Empty is documented as allowed: `?org_id=` is the contract's "no filter".
    org_id = org_id_field(
        pattern=r"^(?:|" + ORG_ID_PATTERN[1:-1] + r")$", note=" Empty or absent: every org."
    )
    is_complete = fields.Boolean(
        truthy={"true", "1"},
        falsy={"false", "0"},
        metadata={"description": "Only snapshots with this stored is_complete; empty: both."},
    )

    @pre_load
    def _drop_empty(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {name: data[name] for name in self.fields if name in data and data[name] != ""}


class RangeOutSchema(Schema):
    """The counted range, in UTC."""

    start = Instant(required=True, metadata={"example": "2026-01-01T00:00:00Z"})
    end = Instant(required=True, metadata={"example": "2026-03-31T23:59:59Z"})


class ResponseSchema(Schema):
    """A response body: every field always present, nothing else (documented so)."""

    class Meta:
        unknown = RAISE


class CountResultSchema(ResponseSchema):
    """The count for (org, range) just computed, and the id of the snapshot holding it."""

    id = fields.String(required=True, metadata={"example": "count-snapshot-" + "0" * 32})
    org_id = fields.String(required=True, metadata={"example": "org-bufdir-42"})
    range = fields.Nested(RangeOutSchema, required=True)
    record_count = fields.Integer(required=True, metadata={"minimum": 0, "example": 312})
    is_complete = fields.Boolean(required=True)
    computed_at = Instant(required=True, metadata={"example": "2026-03-26T10:45:00Z"})

    @pre_dump
    def _from_snapshot(self, snapshot: Any, **kwargs: Any) -> dict[str, Any]:
        return {
            "id": snapshot.id,
            "org_id": snapshot.org_id,
            "range": {"start": snapshot.range_start, "end": snapshot.range_end},
            "record_count": snapshot.record_count,
            "is_complete": snapshot.is_complete,
            "computed_at": snapshot.snapshot_at,
        }


def count_result(snapshot: Any) -> dict[str, Any]:
    """What `CountResultSchema().dump(snapshot)` gives, built directly: the POST's hot path
    (a marshmallow dump costs more than the rest of the response); a unit test pins the two."""
    return {
        "id": snapshot.id,
        "org_id": snapshot.org_id,
        "range": {"start": format_utc(snapshot.range_start), "end": format_utc(snapshot.range_end)},
        "record_count": snapshot.record_count,
        "is_complete": snapshot.is_complete,
        "computed_at": format_utc(snapshot.snapshot_at),
    }


class SnapshotSchema(ResponseSchema):
    """A count frozen as of `snapshot_at`; one per (org, range)."""

    id = fields.String(required=True, metadata={"example": "count-snapshot-" + "0" * 32})
    org_id = fields.String(required=True, metadata={"example": "org-bufdir-42"})
    range_start = Instant(required=True, metadata={"example": "2026-01-01T00:00:00Z"})
    range_end = Instant(required=True, metadata={"example": "2026-03-31T23:59:59Z"})
    record_count = fields.Integer(required=True, metadata={"minimum": 0, "example": 312})
    is_complete = fields.Boolean(required=True)
    snapshot_at = Instant(required=True, metadata={"example": "2026-03-26T08:00:00Z"})


class PaginationSchema(ResponseSchema):
    """Where this page is, and how many snapshots match in all."""

    page = fields.Integer(required=True, metadata={"minimum": 1})
    limit = fields.Integer(required=True, metadata={"minimum": 1, "maximum": MAX_LIMIT})
    total = fields.Integer(required=True, metadata={"minimum": 0})


class SnapshotPageSchema(ResponseSchema):
    """One page of snapshots, newest `snapshot_at` first."""

    data = fields.List(fields.Nested(SnapshotSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class DeletedSchema(ResponseSchema):
    """Confirmation of a deleted snapshot."""

    deleted = fields.Boolean(required=True, metadata={"enum": [True]})
    id = fields.String(required=True)


class ProblemSchema(ResponseSchema):
    """An RFC 9457 problem: every error of this API has this shape."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Unprocessable Content"})
    status = fields.Integer(required=True, metadata={"example": 422})
    detail = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Validation errors by field (dotted path), for 400 and 422."},
    )


class HealthSchema(ResponseSchema):
    """The process is alive."""

    status = fields.String(required=True, metadata={"enum": ["ok"]})


class ReadySchema(ResponseSchema):
    """Redis answers; how far the projection has got."""

    status = fields.String(required=True, metadata={"enum": ["ready"]})
    caught_up_at = Instant(
        required=True,
        allow_none=True,
        metadata={"description": "Every event in the topic at this instant is counted."},
    )
    lag_seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Seconds between caught_up_at and now; null when unknown."},
    )
