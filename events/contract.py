"""The event contract as documents for producers: a JSON Schema and an AsyncAPI 3 document.

Both are generated from the definitions the codec checks (`events/schema.py`,
`events/codec.py`, `events/topics.py`), so neither can say what the codec does not:

    python -m events.contract           # rewrite events/record-created.schema.json and
                                        # docs/asyncapi.yaml (needs PyYAML, a dev dependency)
    python -m events.contract --check   # exit 1 when a committed file is not what this writes

`tests/unit/test_contract.py` runs the check, compares the schema's verdicts with the codec's
on generated messages, and validates the AsyncAPI document against the official schema.
The JSON Schema is package data: `python -m events.validate --print-schema` prints the
installed copy.
"""

from __future__ import annotations

import argparse
import configparser
import json
import sys
from pathlib import Path
from typing import Any

from events import topics
from events.codec import ERROR_CODES, MAX_EVENT_BYTES, InvalidEvent, decode
from events.schema import (
    EVENT_TYPE,
    ID_CONTROL_CHARS,
    JSON_SCHEMA_FILE,
    MAX_ID_LENGTH,
    ORG_ID_CHARS,
    ORG_ID_PATTERN,
    SCHEMA_VERSION,
)
from events.settings import Settings

SCHEMA_ID = "urn:period-record-counts:schema:record-created"
ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = Path(__file__).resolve().with_name(JSON_SCHEMA_FILE)
ASYNCAPI_FILE = ROOT / "docs" / "asyncapi.yaml"
# How docs/asyncapi.yaml reaches the schema file: one file, referenced, never copied.
SCHEMA_REF = f"../events/{JSON_SCHEMA_FILE}"
# JSON Schema's media type with the draft as its version, as AsyncAPI 3.0 writes draft-07
# (`application/schema+json;version=draft-07`, the only JSON Schema draft it names).
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
KAFKA_BINDING = "0.5.0"

EXAMPLE = {
    "schema_version": SCHEMA_VERSION,
    "event_id": "0b6c2f4e-5d1a-4b8e-9f3e-2a6d8c1b7e40",
    "type": EVENT_TYPE,
    "org_id": "org-bufdir-42",
    "record_id": "rec-1001",
    "occurred_at": "2026-03-26T10:44:12.345Z",
}

# RFC 3339 section 5.6, as the codec reads it (events.schema.parse_instant): `T`/`t`, `Z`/`z`,
# any number of fractional digits, no leap second, and only days the month has.
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_DATE = (
    r"(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    rf"|{_LEAP_YEAR}-02-29)"
)
_TIME = r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
OCCURRED_AT_PATTERN = f"^{_DATE}{_TIME}{_OFFSET}$"
# A year before 1969 is out of range whatever the offset; the exact bound depends on it.
OCCURRED_AT_YEARS = r"^(?:1969|19[7-9][0-9]|[2-9][0-9]{3})-"
OCCURRED_AT_CHARS = "0-9Tt:.Zz+-"

# `$` alone is not enough: Python's, Java's and .NET's regex engines let it match before a
# final newline. Every pattern below therefore has a `not` that refuses any character
# outside the field's alphabet, so `org-1\n` is refused by every validator.
_ANCHOR_NOTE = (
    "`not` refuses any character outside the alphabet: some regex engines (Python, Java, "
    ".NET) let `$` match before a final newline."
)

# What JSON Schema cannot say, the codes the service dead-letters such a message with, and
# the rule in words. The schema's description lists them; tests/unit/test_contract.py
# shows each one: the schema accepts such a message and the codec refuses it.
INEXPRESSIBLE: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("key_mismatch",),
        "The Kafka message key is the org_id in UTF-8 (the key is not part of the value). "
        "A message without a key is accepted, but its org may then spread over partitions.",
    ),
    (
        ("duplicate_field",),
        "No JSON object in the value, nested ones included, names a field twice: parsers "
        "disagree on which value wins, and a schema validator sees only one of them.",
    ),
    (
        ("value_missing", "value_too_large", "not_utf8", "not_json"),
        f"The message has a value (it is no tombstone): UTF-8 JSON of at most "
        f"{MAX_EVENT_BYTES} bytes, in which NaN and Infinity are not numbers.",
    ),
    (
        ("bad_occurred_at",),
        "occurred_at, with its offset applied, lies within 1970-01-01T00:00:00Z.."
        "9999-12-31T23:59:59.999999Z. The pattern bounds only the written year (1969..9999).",
    ),
    (
        ("wrong_type",),
        f"schema_version is written as the integer {SCHEMA_VERSION}: JSON Schema compares "
        f"numbers by value, so it cannot refuse {SCHEMA_VERSION}.0 or {SCHEMA_VERSION}e0.",
    ),
    (
        ("bad_event_id", "bad_record_id"),
        "event_id and record_id hold no lone surrogate (an unpaired \\ud800-\\udfff escape).",
    ),
)


def _id_schema(what: str, example: str) -> dict[str, Any]:
    return {
        "description": (
            f"{what} 1-{MAX_ID_LENGTH} characters (Unicode code points), any but control "
            "characters (C0, DEL, C1); spaces are allowed."
        ),
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_LENGTH,
        "not": {"pattern": f"[{ID_CONTROL_CHARS}]"},
        "examples": [example],
    }


def _description() -> str:
    rules = "\n".join(
        f"- {text} [{', '.join(f'`{code}`' for code in codes)}]" for codes, text in INEXPRESSIBLE
    )
    return (
        f"The value of a `{EVENT_TYPE}` message on the record-events topic: one record created "
        "in an upstream system, counted by its `occurred_at`. Fields this schema does not name "
        "are allowed and ignored. A message of another `type` is not a `record.created` event: "
        "the service skips it (it never reaches the dead-letter topic), and this schema "
        "refuses it.\n\n"
        "The service also enforces these rules, which JSON Schema cannot express; a message "
        "that breaks one is dead-lettered with the code in brackets "
        "(`python -m events.validate` checks them all):\n" + rules
    )


def record_created_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a `record.created` message value."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"{EVENT_TYPE} event, version {SCHEMA_VERSION}",
        "description": _description(),
        "type": "object",
        "required": list(EXAMPLE),
        "properties": {
            "schema_version": {
                "description": f"The version of this contract: the integer {SCHEMA_VERSION}.",
                "type": "integer",
                "const": SCHEMA_VERSION,
            },
            "event_id": _id_schema(
                "Unique per event; a producer's retry reuses it, and the same event_id seen "
                "again for the same org within the dedup window (7 days by default) is "
                "counted once.",
                EXAMPLE["event_id"],
            ),
            "type": {
                "description": "The kind of event.",
                "type": "string",
                "const": EVENT_TYPE,
            },
            "org_id": {
                "description": (
                    f"The organisation: 1-{MAX_ID_LENGTH} characters of `A-Z a-z 0-9 . _ : -`, "
                    "starting with a letter or digit. The message key is the same text."
                ),
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_ID_LENGTH,
                "pattern": ORG_ID_PATTERN,
                "not": {"pattern": f"[^{ORG_ID_CHARS}]"},
                "$comment": _ANCHOR_NOTE,
                "examples": [EXAMPLE["org_id"]],
            },
            "record_id": _id_schema("The record that was created.", EXAMPLE["record_id"]),
            "occurred_at": {
                "description": (
                    "When the record was created: an RFC 3339 date-time with an offset (`Z` or "
                    "`+hh:mm`/`-hh:mm`), any number of fractional digits, no leap second. "
                    "Counting is by this time, truncated to the whole UTC second."
                ),
                "type": "string",
                "format": "date-time",
                "pattern": OCCURRED_AT_PATTERN,
                "allOf": [{"pattern": OCCURRED_AT_YEARS}],
                "not": {"pattern": f"[^{OCCURRED_AT_CHARS}]"},
                "$comment": "The pattern holds the calendar (days per month, leap years), so "
                "validators that do not assert `format` check it too. " + _ANCHOR_NOTE,
                "examples": [EXAMPLE["occurred_at"], "2026-03-26T12:44:12+02:00"],
            },
        },
        "examples": [EXAMPLE],
    }


def _package_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser["metadata"]["version"]


def _codes_description() -> str:
    return "The codec's error code:\n" + "\n".join(
        f"- `{code}`: {when}" for code, when in ERROR_CODES.items()
    )


def _dead_letter_example(topic: str) -> dict[str, Any]:
    """The headers the projector writes for a bad org_id, with the codec's own message."""
    bad = dict(EXAMPLE, org_id="-org")
    try:
        decode(json.dumps(bad).encode(), b"-org")
    except InvalidEvent as error:
        code, message = error.code, error.message
    else:
        raise AssertionError("the codec accepted the dead-letter example")
    return {
        "name": code.replace("_", "-"),
        "summary": f"A message whose org_id is {bad['org_id']!r}.",
        "headers": {
            topics.HEADER_ERROR_CODE: code,
            topics.HEADER_ERROR_MESSAGE: message,
            topics.HEADER_SOURCE_TOPIC: topic,
            topics.HEADER_SOURCE_PARTITION: "3",
            topics.HEADER_SOURCE_OFFSET: "1207",
        },
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document: the record-events topic, its key and value, and the DLQ."""
    topic = Settings().record_events_topic
    dlq = topics.dlq_topic_for(topic)
    retention = {key: int(value) for key, value in topics.TOPIC_CONFIGS.items()}
    headers = {
        topics.HEADER_ERROR_CODE: {
            "type": "string",
            "enum": list(ERROR_CODES),
            "description": _codes_description(),
        },
        topics.HEADER_ERROR_MESSAGE: {
            "type": "string",
            "description": "What is wrong, for people (the field and the rule); may be "
            "truncated. Not stable: match on the code.",
        },
        topics.HEADER_SOURCE_TOPIC: {
            "type": "string",
            "description": "The topic the message was read from.",
        },
        topics.HEADER_SOURCE_PARTITION: {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "Its partition, in decimal.",
        },
        topics.HEADER_SOURCE_OFFSET: {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "Its offset, in decimal: with the partition it identifies a repeat "
            "(the dead-letter topic is at-least-once).",
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Period Record Count Service: record events",
            "version": _package_version(),
            "description": (
                "What upstream producers publish for the service to count, and what the service "
                "publishes back when it cannot. Header values are UTF-8 text. Generated by "
                "`python -m events.contract` from the codec's definitions; README.md, "
                '"Publishing events", has the partitioner notes and a kcat example.\n\n'
                "The projector's change notices to the API (Redis pub/sub) are internal and "
                "not part of this contract: clients follow counts through the REST API's "
                "Server-Sent Events, described in its OpenAPI document (/api/v1/openapi.json)."
            ),
            "license": {"name": "MIT"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": Settings().kafka_bootstrap_servers,
                "protocol": "kafka",
                "description": "The local stack of `make run`; elsewhere the brokers named by "
                "KAFKA_BOOTSTRAP_SERVERS.",
            }
        },
        "channels": {
            "recordEvents": {
                "address": topic,
                "title": "Record events",
                "description": (
                    f"The event store (RECORD_EVENTS_TOPIC renames it; retention forever). "
                    "Key: the org_id in UTF-8, so one org's events stay on one partition, in "
                    "order; any partitioner that maps a key to one partition will do. Value: a "
                    f"`{EVENT_TYPE}` event, UTF-8 JSON. Other `type` values may share the "
                    "topic: the service skips them."
                ),
                "messages": {"recordCreated": {"$ref": "#/components/messages/recordCreated"}},
                "bindings": {
                    "kafka": {"topicConfiguration": retention, "bindingVersion": KAFKA_BINDING}
                },
            },
            "deadLetters": {
                "address": dlq,
                "title": "Dead letters",
                "description": (
                    f"Every message of `{topic}` that the service could not decode or that "
                    f"broke the contract (`<topic>{topics.DLQ_SUFFIX}` when the topic is "
                    "renamed), with its original key and value and headers naming the error "
                    "and where it came from. The projector moves on; nothing else of it is "
                    "counted."
                ),
                "messages": {"deadLetter": {"$ref": "#/components/messages/deadLetter"}},
                "bindings": {
                    "kafka": {"topicConfiguration": retention, "bindingVersion": KAFKA_BINDING}
                },
            },
        },
        "operations": {
            "countRecordEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/recordEvents"},
                "title": "Count record.created events",
                "description": "The projector consumes the topic in its consumer group and "
                "counts each distinct event by org and `occurred_at`.",
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "default": Settings().projector_group_id},
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
                "messages": [{"$ref": "#/channels/recordEvents/messages/recordCreated"}],
            },
            "deadLetterBadEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/deadLetters"},
                "title": "Dead-letter bad events",
                "messages": [{"$ref": "#/channels/deadLetters/messages/deadLetter"}],
            },
        },
        "components": {
            "messages": {
                "recordCreated": {
                    "name": EVENT_TYPE,
                    "title": "Record created",
                    "summary": "An organisation created a record in an upstream system.",
                    "contentType": "application/json",
                    "payload": {"schemaFormat": SCHEMA_FORMAT, "schema": {"$ref": SCHEMA_REF}},
                    "bindings": {
                        "kafka": {
                            # Wrapped: a bare {$ref} matches both branches of the key's
                            # oneOf in the official schema (asyncapi/spec-json-schemas#466).
                            "key": {
                                "description": "The org_id in UTF-8: the same text as the "
                                "value's org_id.",
                                "allOf": [{"$ref": f"{SCHEMA_REF}#/properties/org_id"}],
                            },
                            "bindingVersion": KAFKA_BINDING,
                        }
                    },
                    "examples": [
                        {
                            "name": "contract-example",
                            "summary": f"Published with the key {EXAMPLE['org_id']}.",
                            "payload": EXAMPLE,
                        }
                    ],
                },
                "deadLetter": {
                    "name": "dead-letter",
                    "title": "Dead-lettered message",
                    "summary": "The original message, unchanged, with the reason in headers.",
                    "contentType": "application/octet-stream",
                    "headers": {
                        "type": "object",
                        "required": list(headers),
                        "properties": headers,
                    },
                    "payload": {
                        "description": "The original value, byte for byte: maybe not JSON, "
                        "maybe not UTF-8, absent for a tombstone (`value_missing`)."
                    },
                    "bindings": {
                        "kafka": {
                            "key": {"description": "The original key, byte for byte."},
                            "bindingVersion": KAFKA_BINDING,
                        }
                    },
                    "examples": [_dead_letter_example(topic)],
                },
            }
        },
    }


def render_schema() -> str:
    """The JSON Schema file's text."""
    return json.dumps(record_created_schema(), indent=2, ensure_ascii=False) + "\n"


def render_asyncapi() -> str:
    """The AsyncAPI document's text (YAML; descriptions with newlines as block scalars)."""
    import yaml  # a dev dependency: only writing or checking the document needs it

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # write shared parts out in full: no &id001 anchors for readers

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    body = yaml.dump(
        asyncapi_document(), Dumper=Dumper, sort_keys=False, width=96, allow_unicode=True
    )
    return (
        "# Generated by `python -m events.contract` from events/schema.py, events/codec.py and\n"
        "# events/topics.py: change those and regenerate; tests fail while this file differs.\n"
        + body
    )


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the generated contract files."""
    parser = argparse.ArgumentParser(prog="python -m events.contract", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stale = []
    for path, text in ((SCHEMA_FILE, render_schema()), (ASYNCAPI_FILE, render_asyncapi())):
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"{path.relative_to(ROOT)} is stale: run python -m events.contract", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
