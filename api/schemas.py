"""Marshmallow schemas of the API: request validation, response shapes, and the OpenAPI doc."""

from __future__ import annotations

import re
from typing import Any, ClassVar

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

from api.bounds import BOUND_PATTERN, BOUND_RULE, UTC_SECOND_PATTERN, parse_bound
from events.schema import MAX_ID_LENGTH, ORG_ID_PATTERN, format_utc

SNAPSHOT_ID_PATTERN = r"count-snapshot-[0-9a-f]{32}"
MAX_PAGE = 2**31 - 1
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
ORG_ID_RULE = "1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"
_QUERY_INTEGER = re.compile(r"-?[0-9]+").fullmatch


class Instant(fields.Field):
    """A range bound (api/bounds.py) in, whole UTC epoch seconds inside, `…Z` out."""

    # Stated in the OpenAPI document beside `format: date-time` (api/openapi.py).
    JSON_SCHEMA: ClassVar[dict[str, Any]] = {"pattern": BOUND_PATTERN}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return parse_bound(value, self.name or "timestamp")
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_utc(value)


class UtcInstant(Instant):
    """An instant of a response: always UTC with `Z`, at whole seconds."""

    JSON_SCHEMA: ClassVar[dict[str, Any]] = {"pattern": UTC_SECOND_PATTERN}


class QueryInteger(fields.Integer):
    """An integer in a query string, in ASCII digits (`int()` also takes `+1`, ` 1`, `1_0`)."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, str) and _QUERY_INTEGER(value) is None:
            raise self.make_error("invalid")
        return super()._validated(value)


class FullMatch(validate.Regexp):
    """`Regexp` that must match the whole string (marshmallow's `match` lets `$` pass a `\\n`)."""

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def org_id_field(note: str = "", **kwargs: Any) -> fields.String:
    """An org id: the event contract's pattern, documented and enforced."""
    return fields.String(
        validate=FullMatch(ORG_ID_PATTERN, error=f"org_id must be {ORG_ID_RULE}."),
        metadata={
            # The pattern says it too; spelled out for generators that read lengths only.
            "minLength": 1,
            "maxLength": MAX_ID_LENGTH,
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


class RangeSchema(StrictSchema):
    """An inclusive time range; bounds are truncated to the whole UTC second."""

    start = Instant(
        required=True, metadata={"example": "2026-01-01T00:00:00Z", "description": BOUND_RULE}
    )
    end = Instant(
        required=True,
        metadata={
            "example": "2026-03-31T23:59:59Z",
            "description": BOUND_RULE + " Not before start.",
        },
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


class EmptyMeansAbsentSchema(Schema):
    """A query schema where an empty value means "not given", as in `?org_id=&is_complete=`.

    The OpenAPI document says so with `allowEmptyValue` on each of its parameters (api/openapi.py).
    """

    @pre_load
    def _drop_empty(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {name: data[name] for name in self.fields if name in data and data[name] != ""}


class ListQuerySchema(EmptyMeansAbsentSchema):
    """Query of `GET /`."""

    page = QueryInteger(
        load_default=1, validate=validate.Range(min=1, max=MAX_PAGE), metadata={"example": 1}
    )
    limit = QueryInteger(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"example": DEFAULT_LIMIT},
    )
    org_id = org_id_field(note=" Empty or absent: every org.")
    is_complete = fields.Boolean(
        truthy={"true", "1"},
        falsy={"false", "0"},
        metadata={
            "description": "Only snapshots with this stored is_complete (true/false, or 1/0); "
            "empty or absent: both."
        },
    )


class RangeOutSchema(Schema):
    """The counted range, in UTC."""

    start = UtcInstant(required=True, metadata={"example": "2026-01-01T00:00:00Z"})
    end = UtcInstant(required=True, metadata={"example": "2026-03-31T23:59:59Z"})


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
    computed_at = UtcInstant(required=True, metadata={"example": "2026-03-26T10:45:00Z"})

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
    range_start = UtcInstant(required=True, metadata={"example": "2026-01-01T00:00:00Z"})
    range_end = UtcInstant(required=True, metadata={"example": "2026-03-31T23:59:59Z"})
    record_count = fields.Integer(required=True, metadata={"minimum": 0, "example": 312})
    is_complete = fields.Boolean(required=True)
    snapshot_at = UtcInstant(required=True, metadata={"example": "2026-03-26T08:00:00Z"})


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


class RebuildProgressSchema(ResponseSchema):
    """A rebuild under way (`python -m projector rebuild`), as it last reported (every second)."""

    generation = fields.Integer(
        required=True, metadata={"description": "The generation being built."}
    )
    phase = fields.String(
        required=True,
        metadata={
            "enum": ["building", "moving", "aborting"],
            "description": "building: reading the topic from its first offset; moving: live "
            "projectors move to it ahead of the switch; aborting: being dropped.",
        },
    )
    records_applied = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Records of the topic read."}
    )
    records_total = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Records in the topic now."}
    )
    lag_records = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Records still to read."}
    )
    events_per_second = fields.Float(
        required=True, allow_none=True, metadata={"description": "Records read a second."}
    )
    eta_seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Seconds until caught up; null while not gaining."},
    )
    updated_at = Instant(
        required=True, allow_none=True, metadata={"description": "When this was reported."}
    )


class ListpackSettingsSchema(ResponseSchema):
    """Redis's hash-max-listpack-* settings against what the key layout needs."""

    ok = fields.Boolean(
        required=True,
        allow_none=True,
        metadata={
            "description": "Every setting meets the need (hashes stay compact); false: counts "
            "stay exact but busy orgs take several times the memory; null: not readable."
        },
    )
    config = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(allow_none=True),
        required=True,
        metadata={"description": "The settings Redis reported (null: CONFIG GET refused)."},
    )
    needed = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "The least value of each setting the layout needs."},
    )


class ReadySchema(ResponseSchema):
    """Redis answers; how far the projection has got, its live generation, a rebuild."""

    status = fields.String(required=True, metadata={"enum": ["ready"]})
    caught_up_at = UtcInstant(
        required=True,
        allow_none=True,
        metadata={"description": "Every event in the topic at this instant is counted."},
    )
    lag_seconds = fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Seconds between caught_up_at and now; null when unknown."},
    )
    generation = fields.Integer(
        required=True,
        metadata={"description": "The live generation of the projection (reads use it)."},
    )
    rebuild = fields.Nested(
        RebuildProgressSchema,
        required=True,
        allow_none=True,
        metadata={"description": "The rebuild under way, or null."},
    )
    listpack = fields.Nested(ListpackSettingsSchema, required=True)
