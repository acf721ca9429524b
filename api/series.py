"""`GET /series`: an org's counts per calendar interval of a time zone (read-only)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from flask import Response
from flask.views import MethodView
from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from api import intervals
from api.middleware import BASE_PATH
from api.openapi import Blueprint
from api.schemas import (
    BOUND_RULE,
    Instant,
    RangeOutSchema,
    ResponseSchema,
    UtcInstant,
    org_id_field,
)
from api.service import SeriesCounts, current_service
from events.schema import format_utc

INTERVALS = [interval.value for interval in intervals.Interval]
ZONE_RULE = "an IANA time zone name, such as Europe/Oslo or UTC"
LOCAL_BOUND = {
    "format": "date-time",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})$",
    "description": "Inclusive, whole seconds, in the zone's offset at that instant.",
}

blp = Blueprint(
    "series",
    __name__,
    url_prefix=BASE_PATH,
    description="Counts per calendar interval (hour to year) of an IANA time zone.",
)


def _enum_name(zone_name: str) -> str:
    """A code name for a zone, unique over tzdata's (Etc/GMT+5 and Etc/GMT-5 differ): client
    generators name enum members after `x-enum-varnames` instead of folding signs away."""
    signed = re.sub(r"([+-])(?=\d)", lambda m: "_PLUS_" if m[1] == "+" else "_MINUS_", zone_name)
    return re.sub(r"[^0-9A-Za-z]+", "_", signed).strip("_").upper()


ZONES = sorted(intervals.zone_names())
ZONE_VARNAMES = [_enum_name(name) for name in ZONES]
if len(set(ZONE_VARNAMES)) != len(ZONES):  # pragma: no cover - a tzdata release would say so
    raise RuntimeError("two time zones share an enum name")


def _known_zone(name: str) -> None:
    if name not in intervals.zone_names():
        raise ValidationError(f"tz must be {ZONE_RULE}; {name[:80]!r} is not one.")


class SeriesQuerySchema(Schema):
    """Query of `GET /series`: org, inclusive range, interval, zone."""

    class Meta:
        unknown = EXCLUDE  # as for the stream: browsers and proxies add parameters of their own

    org_id = org_id_field(required=True)
    start = Instant(
        required=True, metadata={"example": "2026-03-01T00:00:00+01:00", "description": BOUND_RULE}
    )
    end = Instant(
        required=True,
        metadata={
            "example": "2026-03-31T23:59:59+02:00",
            "description": BOUND_RULE + " Not before start.",
        },
    )
    interval = fields.String(
        required=True,
        validate=validate.OneOf(INTERVALS, error="interval must be one of {choices}."),
        metadata={"example": "month", "description": "Weeks are ISO weeks, Monday first."},
    )
    tz = fields.String(
        load_default="UTC",
        validate=_known_zone,
        metadata={
            "example": "Europe/Oslo",
            "description": f"The zone: {ZONE_RULE}.",
            "enum": ZONES,
            "x-enum-varnames": ZONE_VARNAMES,
        },
    )

    @validates_schema
    def _start_not_after_end(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["start"] > data["end"]:
            raise ValidationError("start must not be after end")

    @post_load
    def _buckets(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The buckets, drawn once here: too many of them is a bad query (422)."""
        interval = intervals.Interval(data["interval"])
        try:
            data["buckets"] = intervals.series(
                intervals.zone(data["tz"]), interval, data["start"], data["end"]
            )
        except intervals.TooManyBuckets as exc:
            raise ValidationError(
                f"{exc}; choose a longer interval or a shorter range.", "interval"
            ) from exc
        return data


class SeriesBucketSchema(ResponseSchema):
    """One calendar interval, clipped to the range, and its count."""

    start = fields.String(
        required=True, metadata={"example": "2026-03-01T00:00:00+01:00", **LOCAL_BOUND}
    )
    end = fields.String(
        required=True, metadata={"example": "2026-03-31T23:59:59+02:00", **LOCAL_BOUND}
    )
    record_count = fields.Integer(required=True, metadata={"minimum": 0, "example": 27})


class SeriesSchema(ResponseSchema):
    """Counts per interval over the range; `record_count` is their sum (the POST count)."""

    org_id = fields.String(required=True, metadata={"example": "org-bufdir-42"})
    interval = fields.String(required=True, metadata={"enum": INTERVALS})
    tz = fields.String(required=True, metadata={"example": "Europe/Oslo"})
    range = fields.Nested(RangeOutSchema, required=True)
    buckets = fields.List(
        fields.Nested(SeriesBucketSchema),
        required=True,
        metadata={"maxItems": intervals.MAX_BUCKETS},
    )
    record_count = fields.Integer(required=True, metadata={"minimum": 0, "example": 312})
    is_complete = fields.Boolean(required=True)
    computed_at = UtcInstant(required=True, metadata={"example": "2026-03-26T10:45:00Z"})


def series_result(query: dict[str, Any], counted: SeriesCounts) -> dict[str, Any]:
    """The SeriesSchema body, built directly (366 buckets through a marshmallow dump would
    cost more than the count); tests validate it against the schema."""
    local = intervals.format_local
    return {
        "org_id": query["org_id"],
        "interval": query["interval"],
        "tz": query["tz"],
        "range": {"start": format_utc(query["start"]), "end": format_utc(query["end"])},
        "buckets": [
            {
                "start": local(bucket.start, bucket.start_offset),
                "end": local(bucket.end, bucket.end_offset),
                "record_count": count,
            }
            for bucket, count in zip(query["buckets"], counted.counts, strict=True)
        ],
        "record_count": sum(counted.counts),
        "is_complete": counted.is_complete,
        "computed_at": format_utc(int(counted.computed_at)),
    }


@blp.route("/series")
class Series(MethodView):
    """Counts of one org per calendar interval."""

    @blp.arguments(SeriesQuerySchema(), location="query")
    @blp.response(200, SeriesSchema())
    @blp.errors(503)
    @blp.doc(operationId="countRecordsPerInterval")
    def get(self, query: dict[str, Any]) -> Any:
        """Count per interval of a zone's calendar; 422 bad query or > 1,000, 503 no Redis."""
        counted = current_service().series(query["org_id"], query["buckets"], query["end"])
        # orjson: a year of days is ~30 KB of JSON, ~8x faster to write than with json.
        return Response(orjson.dumps(series_result(query, counted)), mimetype="application/json")
