"""The event contract as documents for producers: the JSON Schema, and the command that writes it.

The JSON Schema (here) and the AsyncAPI document (events/asyncapi.py) are generated from the
definitions the codec checks (`events/schema.py`, `events/codec.py`, `events/topics.py`), so
neither can say what the codec does not:

    python -m events.contract           # rewrite events/record-created.schema.json and
                                        # docs/asyncapi.yaml (needs PyYAML, a dev dependency)
    python -m events.contract --check   # exit 1 when a committed file is not what this writes

`tests/unit/test_contract.py` runs the check and compares the schema's verdicts with the
codec's on generated messages; `tests/unit/test_asyncapi.py` validates the AsyncAPI document
against the official AsyncAPI 3.0.0 schema.
The JSON Schema is package data: `python -m events.validate --print-schema` prints the
installed copy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from events.codec import MAX_EVENT_BYTES
from events.schema import (
    EVENT_TYPE,
    ID_CONTROL_CHARS,
    JSON_SCHEMA_FILE,
    MAX_ID_LENGTH,
    ORG_ID_CHARS,
    ORG_ID_PATTERN,
    SCHEMA_VERSION,
)

SCHEMA_ID = "urn:period-record-counts:schema:record-created"
ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = Path(__file__).resolve().with_name(JSON_SCHEMA_FILE)
ASYNCAPI_FILE = ROOT / "docs" / "asyncapi.yaml"
# How docs/asyncapi.yaml reaches the schema file: one file, referenced, never copied.
SCHEMA_REF = f"../events/{JSON_SCHEMA_FILE}"

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


def render_schema() -> str:
    """The JSON Schema file's text."""
    return json.dumps(record_created_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the generated contract files."""
    parser = argparse.ArgumentParser(prog="python -m events.contract", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    # Imported here: the AsyncAPI document builds on this module (its example, the schema ref).
    from events.asyncapi import render_asyncapi

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
