"""Kafka message bytes <-> `RecordCreated`, with precise, stable error codes for the DLQ.

`decode` runs its checks in the order of `ERROR_CODES` (per field: missing, then type, then
value) and raises `InvalidEvent` with the first failure's code, which the projector puts in
the `dlq.error.code` header. `ERROR_CODES` is the one list of them: the AsyncAPI document
(events/contract.py) and `python -m events.validate --codes` print it, and
tests/unit/test_codec.py provokes every code in it.

A well-formed object whose string `type` is not `record.created` decodes to `SkippedEvent`.
Fields the contract does not name are ignored, so producers can add fields without breaking
this reader (forward compatibility).

Two paths, one verdict. Almost every message is a flat object with no escapes; `_fast`
parses those with orjson (~6x faster than `json` with a pairs hook) and checks the fields,
and hands anything else — any error, escapes, nested values, a possible duplicate field —
to the strict path, which alone decides how a message is bad. So the fast path can only
say "valid", and only where the strict path would say the same (tests/unit/test_codec.py
runs both on the same inputs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from events.schema import (
    EVENT_TYPE,
    ID_FORBIDDEN,
    MAX_ID_LENGTH,
    ORG_ID_OK,
    SCHEMA_VERSION,
    EventError,
    InvalidEvent,
    RecordCreated,
    check_id,
    check_org_id,
    check_schema_version,
    format_rfc3339,
    parse_instant,
    plain_instant,
    trusted_record_created,
    type_name,
)

__all__ = [
    "ERROR_CODES",
    "MAX_EVENT_BYTES",
    "EventError",
    "InvalidEvent",
    "SkippedEvent",
    "decode",
    "decode_for_count",
    "encode",
]

MAX_EVENT_BYTES = 16384

# Every code `decode` raises, and when, in the order the checks run.
ERROR_CODES: dict[str, str] = {
    "value_missing": "the message has no value (a tombstone)",
    "value_too_large": f"the value is over {MAX_EVENT_BYTES} bytes (checked before parsing)",
    "not_utf8": "the value is not UTF-8",
    "not_json": "the value is not JSON (NaN and Infinity included)",
    "duplicate_field": "an object, nested ones included, names the same field twice",
    "not_object": "the JSON value is not an object",
    "missing_field": "`type` is absent, or, for record.created, a field of the contract",
    "wrong_type": "a field has the wrong JSON type (null included; schema_version 1.0 too)",
    "bad_schema_version": f"schema_version is not {SCHEMA_VERSION}",
    "bad_event_id": "event_id is empty, too long, or holds a control character or lone surrogate",
    "bad_org_id": "org_id breaks its pattern",
    "bad_record_id": "record_id is empty, too long, or holds a control character or lone surrogate",
    "bad_occurred_at": "occurred_at is not RFC 3339 with an offset, or is outside 1970..9999",
    "key_mismatch": "a key was given and is not the org_id in UTF-8",
}


@dataclass(frozen=True)
class SkippedEvent:
    """A well-formed event of another `type`, which this service does not count."""

    type: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise InvalidEvent(
                    "duplicate_field", f"field {name!r} appears more than once", name
                )
            seen.add(name)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_MISSING = object()


def _required(doc: dict[str, Any], name: str) -> Any:
    """The value of field `name`; InvalidEvent `missing_field` when it is absent."""
    value = doc.get(name, _MISSING)
    if value is _MISSING:
        raise InvalidEvent("missing_field", f"field {name!r} is missing", name)
    return value


def decode(value: bytes | None, key: bytes | None = None) -> RecordCreated | SkippedEvent:
    """Decode one message value (and check its key); raise InvalidEvent with a precise code."""
    if value is not None:
        fields = _fast(value, key)
        if fields is not None:
            return trusted_record_created(*fields)
    return _strict(value, key)


def decode_for_count(
    value: bytes | None, key: bytes | None = None
) -> tuple[str, str, int] | SkippedEvent:
    """`decode`, for a reader that needs only (org_id, event_id, occurred_second).

    Same verdicts and errors as `decode`; skips building the event (the projector's path).
    """
    if value is not None:
        fields = _fast(value, key)
        if fields is not None:
            return fields[1], fields[0], fields[4]
    event = _strict(value, key)
    if isinstance(event, SkippedEvent):
        return event
    return event.org_id, event.event_id, event.occurred_second


_QUOTE = ord('"')


def _fast(value: bytes, key: bytes | None) -> tuple[str, str, str, Any, int] | None:
    """The fields of a plainly valid `record.created` message, or None: ask `_strict`."""
    if len(value) > MAX_EVENT_BYTES or b"\\" in value:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict:
        return None
    # Without escapes every quote delimits a string: a flat object parsed into n fields with
    # s string values has 2 * (n + s) quotes, and more when a field name came twice.
    strings = 0
    for item in doc.values():
        kind = type(item)
        if kind is str:
            strings += 1
        elif kind is dict or kind is list:
            return None
    if value.count(_QUOTE) != 2 * (len(doc) + strings):
        return None
    get = doc.get
    event_id, org_id, record_id = get("event_id"), get("org_id"), get("record_id")
    occurred_at, version = get("occurred_at"), get("schema_version")
    if (
        get("type") != EVENT_TYPE
        or type(version) is not int
        or version != SCHEMA_VERSION
        or type(event_id) is not str
        or not 0 < len(event_id) <= MAX_ID_LENGTH
        or ID_FORBIDDEN(event_id) is not None
        or type(org_id) is not str
        or ORG_ID_OK(org_id) is None
        or type(record_id) is not str
        or not 0 < len(record_id) <= MAX_ID_LENGTH
        or ID_FORBIDDEN(record_id) is not None
        or type(occurred_at) is not str
        or (key is not None and key != org_id.encode())
    ):
        return None
    instant = plain_instant(occurred_at)
    if instant is None:
        return None
    return event_id, org_id, record_id, instant[0], instant[1]


def _strict(value: bytes | None, key: bytes | None) -> RecordCreated | SkippedEvent:
    """The reference decoder: every check in order, the first failure's precise error."""
    if value is None:
        raise InvalidEvent("value_missing", "message has no value")
    if len(value) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            "value_too_large", f"value is {len(value)} bytes, over the {MAX_EVENT_BYTES} limit"
        )
    try:
        text = value.decode()
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", f"value is not UTF-8 (bad byte at {exc.start})") from None
    try:
        doc = _DECODER.decode(text)
    except InvalidEvent:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidEvent("not_json", f"value is not JSON: {exc.msg} at {exc.pos}") from None
    except ValueError as exc:  # NaN / Infinity
        raise InvalidEvent("not_json", f"value is not JSON: {exc}") from None
    except RecursionError:  # 16 KiB of "[" nests deeper than the interpreter allows
        raise InvalidEvent("not_json", "value is not JSON: nested too deeply") from None
    if type(doc) is not dict:
        raise InvalidEvent("not_object", f"value is a JSON {type_name(doc)}, not an object")

    event_type = _required(doc, "type")
    if type(event_type) is not str:
        raise InvalidEvent(
            "wrong_type", f"type must be a string, got {type_name(event_type)}", "type"
        )
    if event_type != EVENT_TYPE:
        return SkippedEvent(event_type)

    check_schema_version(_required(doc, "schema_version"))
    event_id = check_id("event_id", _required(doc, "event_id"))
    org_id = check_org_id(_required(doc, "org_id"))
    record_id = check_id("record_id", _required(doc, "record_id"))
    occurred_at = _required(doc, "occurred_at")
    if type(occurred_at) is not str:
        raise InvalidEvent(
            "wrong_type",
            f"occurred_at must be a string, got {type_name(occurred_at)}",
            "occurred_at",
        )
    try:
        moment, second = parse_instant(occurred_at, "occurred_at")
    except ValueError as exc:
        raise InvalidEvent("bad_occurred_at", str(exc), "occurred_at") from None

    if key is not None and key != org_id.encode():
        raise InvalidEvent(
            "key_mismatch", f"message key {bytes(key)[:140]!r} is not the org_id {org_id!r}"
        )
    return trusted_record_created(event_id, org_id, record_id, moment, second)


def encode(event: RecordCreated) -> tuple[bytes, bytes]:
    """Encode an event as (key, value): the org_id in UTF-8 and compact UTF-8 JSON."""
    value = _ENCODER.encode(
        {
            "schema_version": event.schema_version,
            "event_id": event.event_id,
            "type": EVENT_TYPE,
            "org_id": event.org_id,
            "record_id": event.record_id,
            "occurred_at": format_rfc3339(event.occurred_at),
        }
    )
    return event.org_id.encode(), value.encode()
