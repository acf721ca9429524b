"""The JSON Schema says what the codec says: generated files, verdicts, and the rules it cannot say.

"Same verdict" means: the schema accepts a value exactly when the codec counts it. A message
of another `type` is skipped by the codec, never dead-lettered; it is not a `record.created`
event, so the schema refuses it, and only for its `type`. The rules JSON Schema cannot express
(`contract.INEXPRESSIBLE`) are the one exception: there the schema accepts and the codec
refuses, with the code the schema's description names. The schema side parses the way a
producer's validator would (strict UTF-8, RFC 8259 JSON, the last of two equal names wins)
and validates with jsonschema's Draft 2020-12 validator, formats asserted.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from events import asyncapi, contract
from events.codec import ERROR_CODES, MAX_EVENT_BYTES, InvalidEvent, SkippedEvent, decode
from events.schema import (
    EVENT_TYPE,
    ID_CONTROL_CHARS,
    MAX_EPOCH,
    MAX_ID_LENGTH,
    MIN_EPOCH,
    ORG_ID_OK,
    ORG_ID_PATTERN,
    SCHEMA_VERSION,
)

SCHEMA = json.loads(contract.SCHEMA_FILE.read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
# Many validators do not assert `format` by default: the patterns alone must decide the same.
PATTERNS_ONLY = Draft202012Validator(SCHEMA)
EXAMPLE = contract.EXAMPLE
FIELDS = tuple(EXAMPLE)
STRING_FIELDS = ("event_id", "type", "org_id", "record_id", "occurred_at")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


# -- the generated files ------------------------------------------------------------------


def test_committed_files_are_what_the_generator_writes() -> None:
    assert contract.SCHEMA_FILE.read_text(encoding="utf-8") == contract.render_schema()
    assert contract.ASYNCAPI_FILE.read_text(encoding="utf-8") == asyncapi.render_asyncapi()
    assert contract.main(["--check"]) == 0


def test_check_fails_on_a_stale_file_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    before = contract.SCHEMA_FILE.read_bytes()
    monkeypatch.setattr(contract, "render_schema", lambda: "{}\n")
    assert contract.main(["--check"]) == 1
    assert contract.SCHEMA_FILE.read_bytes() == before


def test_the_schema_is_package_data(tmp_path: Path) -> None:
    """A build from a clean copy of the sources (no egg-info to lean on) ships the file."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(contract.ROOT / name, source / name)
    for package in ("events", "api", "projector"):
        shutil.copytree(
            contract.ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    build = tmp_path / "build"
    setup = "from setuptools import setup; setup()"
    command = [sys.executable, "-c", setup, "-q", "build_py", "--build-lib", str(build)]
    subprocess.run(command, cwd=source, check=True, capture_output=True)
    shipped = build / "events" / contract.SCHEMA_FILE.name
    assert shipped.read_bytes() == contract.SCHEMA_FILE.read_bytes()


def test_schema_is_draft_2020_12_built_from_the_codec_definitions() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    props = SCHEMA["properties"]
    assert SCHEMA["required"] == list(FIELDS)
    assert props["org_id"]["pattern"] == ORG_ID_PATTERN
    assert props["type"]["const"] == EVENT_TYPE
    assert props["schema_version"]["const"] == SCHEMA_VERSION
    for name in ("event_id", "record_id", "org_id"):
        assert props[name]["maxLength"] == MAX_ID_LENGTH
    for name in ("event_id", "record_id"):
        assert props[name]["not"] == {"pattern": f"[{ID_CONTROL_CHARS}]"}


def test_format_checking_really_checks_date_time() -> None:
    """`schema_accepts` compares it with pattern-only validation, so it must be real."""
    # jsonschema checks `date-time` only when rfc3339-validator is installed; without it
    # every string conforms and the verdict tests below would pass for the wrong reason.
    checker = Draft202012Validator.FORMAT_CHECKER
    assert not checker.conforms("2026-02-30T10:00:00Z", "date-time")
    assert checker.conforms("2024-02-29T10:00:00Z", "date-time")


def test_the_schema_examples_are_counted() -> None:
    for example in SCHEMA["examples"]:
        raw = json.dumps(example).encode()
        assert schema_accepts(raw) and codec_verdict(raw) == "counted"
    assert EXAMPLE["occurred_at"] in SCHEMA["properties"]["occurred_at"]["examples"]


# -- the two verdicts, and an oracle for the rules the schema cannot say --------------------


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def schema_accepts(raw: bytes) -> bool:
    """A producer's JSON Schema validator's verdict: parse strict JSON, then validate."""
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_not_json)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False
    accepted = VALIDATOR.is_valid(doc)
    assert PATTERNS_ONLY.is_valid(doc) == accepted, f"format decided {raw!r}"
    return accepted


def codec_verdict(raw: bytes | None, key: bytes | None = None) -> str:
    """`counted`, `skipped`, or the code the projector would dead-letter the message with."""
    try:
        result = decode(raw, key)
    except InvalidEvent as error:
        return error.code
    return "skipped" if isinstance(result, SkippedEvent) else "counted"


def _has_duplicate(text: str) -> bool:
    found = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or len({name for name, _ in items}) != len(items)
        return dict(items)

    json.loads(text, object_pairs_hook=pairs, parse_constant=_not_json)
    return found


_STAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


def _outside_range(text: str) -> bool:
    """Whether a well-formed RFC 3339 date-time names an instant outside 1970..9999 (UTC)."""
    m = _STAMP.fullmatch(text)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    sign, oh, om = m.groups()[6:]
    offset = 0 if sign is None else (1 if sign == "+" else -1) * (int(oh) * 3600 + int(om) * 60)
    if year < 1969:
        return True
    if hour > 23 or minute > 59 or second > 59 or (sign and (int(oh) > 23 or int(om) > 59)):
        return False
    try:
        days = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return False
    epoch = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return not MIN_EPOCH <= epoch <= MAX_EPOCH


def inexpressible(raw: bytes) -> set[str]:
    """The codes of the rules beyond JSON Schema that `raw` breaks, found without the codec."""
    codes = set()
    if len(raw) > MAX_EVENT_BYTES:
        codes.add("value_too_large")
    try:
        text = raw.decode("utf-8")
        if _has_duplicate(text):
            codes.add("duplicate_field")
        doc = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return codes
    if not isinstance(doc, dict):
        return codes
    version = doc.get("schema_version")
    if type(version) is float and version == SCHEMA_VERSION:
        codes.add("wrong_type")
    for name in ("event_id", "record_id"):
        value = doc.get(name)
        if isinstance(value, str) and re.search("[\ud800-\udfff]", value):
            codes.add(f"bad_{name}")
    moment = doc.get("occurred_at")
    if isinstance(moment, str) and _outside_range(moment):
        codes.add("bad_occurred_at")
    return codes


def assert_same_verdict(raw: bytes) -> str:
    """The schema accepts exactly what the codec counts, but for the inexpressible rules."""
    verdict = codec_verdict(raw)
    accepted = schema_accepts(raw)
    if verdict == "counted":
        assert accepted, raw
        assert not inexpressible(raw), raw
    elif verdict == "skipped":
        assert not accepted, raw
        errors = VALIDATOR.iter_errors(json.loads(raw))
        assert ["type"] in [list(error.absolute_path) for error in errors], raw
    elif accepted:
        assert verdict in inexpressible(raw), (raw, verdict)
    return verdict


# -- messages: valid ones, and every class of invalid one ---------------------------------

# Cc is every control character (C0, DEL and C1); Cs the surrogates.
ids = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=MAX_ID_LENGTH)
org_ids = st.from_regex(ORG_ID_PATTERN, fullmatch=True)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
fractions = st.none() | st.text("0123456789", min_size=1, max_size=12)


def _offset(sign: str, minutes: int) -> str:
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def good_stamps(draw: st.DrawFn) -> str:
    """Valid occurred_at texts in every shape the codec reads, within the range."""
    day = date.fromordinal(
        draw(st.integers(date(1970, 1, 2).toordinal(), date(9999, 12, 30).toordinal()))
    )
    hour, minute, second = (
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
    )
    clock = f"{hour:02d}:{minute:02d}:{second:02d}"
    fraction = draw(fractions)
    zone = draw(
        st.sampled_from(["Z", "z", "+00:00", "-00:00"])
        | st.builds(_offset, st.sampled_from("+-"), st.integers(0, 23 * 60 + 59))
    )
    sep = draw(st.sampled_from("Tt"))
    text = f"{day.isoformat()}{sep}{clock}" + ("" if fraction is None else f".{fraction}")
    return text + zone


# Dates the calendar decides: leap days, day 31 of 30-day months, February 30.
tricky_dates = st.sampled_from(
    ["2024-02-29", "2023-02-29", "2000-02-29", "2100-02-29", "1972-02-29", "9996-02-29",
     "2026-04-31", "2026-06-30", "2026-02-30", "2026-12-31", "2026-11-31", "1969-12-31"]
)  # fmt: skip


@st.composite
def stamp_texts(draw: st.DrawFn) -> str:
    """Timestamps whose every part may be out of its range: valid and near-miss alike."""
    if draw(st.booleans()):
        day = draw(tricky_dates)
    else:
        y, m, d = draw(st.integers(0, 9999)), draw(st.integers(0, 13)), draw(st.integers(0, 32))
        day = f"{y:04d}-{m:02d}-{d:02d}"
    h, mi, s = draw(st.integers(0, 24)), draw(st.integers(0, 60)), draw(st.integers(0, 61))
    fraction = draw(st.none() | st.text("0123456789", max_size=12))  # "" -> a bare "."
    zone = draw(
        st.sampled_from(["Z", "z", "", "+0100", "+01", " Z", "UTC", "+01:00:00", "Z\n"])
        | st.builds(
            lambda sign, hh, mm: f"{sign}{hh:02d}:{mm:02d}",
            st.sampled_from("+-"),
            st.integers(0, 24),
            st.integers(0, 60),
        )
    )
    sep = draw(st.sampled_from(["T", "t", " ", "_"]))
    text = f"{day}{sep}{h:02d}:{mi:02d}:{s:02d}" + ("" if fraction is None else f".{fraction}")
    return text + zone


@st.composite
def edge_stamps(draw: st.DrawFn) -> str:
    """Instants within two days of either end of the range, written with any offset."""
    edge = draw(st.sampled_from([MIN_EPOCH, MAX_EPOCH]))
    epoch = edge + draw(st.integers(-2 * 86400, 2 * 86400))
    offset = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59)) * 60
    local = epoch + offset
    days, rest = divmod(local, 86400)
    ordinal = _EPOCH_ORDINAL + days
    if not date(1, 1, 1).toordinal() <= ordinal <= date(9999, 12, 31).toordinal():
        ordinal = _EPOCH_ORDINAL  # not writable with a 4-digit year; any in-range date will do
    day = date.fromordinal(ordinal)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    zone = "Z" if offset == 0 else _offset("+" if offset > 0 else "-", abs(offset) // 60)
    return f"{day.isoformat()}T{clock}{draw(st.sampled_from(['', '.999999999']))}{zone}"


extras = st.dictionaries(
    st.text(max_size=6).filter(lambda name: name not in EXAMPLE), json_values, max_size=3
)
valid_docs = st.builds(
    lambda fields, extra: extra | fields,
    st.fixed_dictionaries(
        {
            "schema_version": st.just(SCHEMA_VERSION),
            "event_id": ids,
            "type": st.just(EVENT_TYPE),
            "org_id": org_ids,
            "record_id": ids,
            "occurred_at": good_stamps(),
        }
    ),
    extras,
)


def dump(doc: object, ascii_only: bool = True) -> bytes:
    """JSON as producers write it: escaped or raw UTF-8 (lone surrogates pass through)."""
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def with_field(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """A valid message with field `name` replaced by a drawn value."""
    return st.builds(lambda doc, value: dump(doc | {name: value}), valid_docs, values)


def _insert(doc: dict[str, Any], position: int, char: str, name: str) -> bytes:
    value = doc[name]
    at = position % (len(value) + 1)
    return dump(doc | {name: value[:at] + char + value[at:]})


def bad_ids(name: str) -> st.SearchStrategy[bytes]:
    """Empty, too long, or holding a control character (C0, DEL, C1)."""
    controls = st.characters(min_codepoint=0, max_codepoint=0x9F).filter(
        lambda c: ord(c) < 0x20 or ord(c) >= 0x7F
    )
    return st.one_of(
        with_field(name, st.just("")),
        with_field(name, st.text(min_size=MAX_ID_LENGTH + 1, max_size=MAX_ID_LENGTH + 40)),
        st.builds(_insert, valid_docs, st.integers(0, 200), controls, st.just(name)),
    )


bad_org_ids = st.one_of(
    with_field("org_id", st.text(max_size=140).filter(lambda text: ORG_ID_OK(text) is None)),
    with_field("org_id", st.just("o" * (MAX_ID_LENGTH + 1))),
    with_field("org_id", st.sampled_from(["", "-org", ".org", "org 42", "org\n", "org/1", "ørg"])),
    st.builds(
        _insert,
        valid_docs,
        st.integers(0, 200),
        st.sampled_from([" ", "\n", "/", "é", "٣", "\x00", "{"]),
        st.just("org_id"),
    ),
)


def _is_wrong_type(name: str, value: Any) -> bool:
    if name == "schema_version":  # 1.0 is the inexpressible case, tested on its own
        return type(value) is not int and not (type(value) is float and value == 1)
    return type(value) is not str


wrong_types = st.sampled_from(FIELDS).flatmap(
    lambda name: with_field(name, json_values.filter(lambda v: _is_wrong_type(name, v)))
)


def _refused_stamp(text: str) -> bool:
    """Refused as occurred_at by the codec, for a reason the schema can express."""
    raw = dump(EXAMPLE | {"occurred_at": text})
    return codec_verdict(raw) == "bad_occurred_at" and not _outside_range(text)


bad_stamps = stamp_texts().filter(_refused_stamp) | st.sampled_from(
    ["", "2026-03-26", "2026-03-26T10:44:12", "26 Mar 2026 10:44:12 GMT",
     "1968-12-31T23:59:59+23:59", "0000-01-01T00:00:00Z", " 2026-03-26T10:44:12Z",
     "\u0662\u0660\u0662\u0666-03-26T10:44:12Z", "2026-03-26T10:44:12Z\n"]
)  # fmt: skip

# Each class of invalid value the schema refuses too, as the codec names it.
INVALID: dict[str, st.SearchStrategy[bytes]] = {
    "not_utf8": st.builds(
        lambda doc, bad: dump(doc, ascii_only=False).replace(b'"type"', b'"ty' + bad + b'pe"'),
        valid_docs,
        st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80"]),
    ),
    "not_json": st.one_of(
        st.builds(lambda doc, cut: dump(doc)[: cut % len(dump(doc))], valid_docs, st.integers(0)),
        st.builds(lambda doc: dump(doc)[:-1] + b',"x":NaN}', valid_docs),
        st.builds(lambda doc: b"\xef\xbb\xbf" + dump(doc), valid_docs),
        st.builds(lambda doc: dump(doc).replace(b'"', b"'"), valid_docs),
        st.builds(lambda doc: dump(doc) + b" {}", valid_docs),
    ),
    "not_object": json_values.filter(lambda v: not isinstance(v, dict)).map(dump),
    "missing_field": st.builds(
        lambda doc, name: dump({k: v for k, v in doc.items() if k != name}),
        valid_docs,
        st.sampled_from(FIELDS),
    ),
    "wrong_type": wrong_types,
    "bad_schema_version": with_field(
        "schema_version", st.integers().filter(lambda n: n != SCHEMA_VERSION)
    ),
    "bad_event_id": bad_ids("event_id"),
    "bad_org_id": bad_org_ids,
    "bad_record_id": bad_ids("record_id"),
    "bad_occurred_at": with_field("occurred_at", bad_stamps),
}


def _duplicated(doc: dict[str, Any], name: str, value: Any, nested: bool) -> bytes:
    raw = dump(doc)
    extra = f'"{name}":{json.dumps(value)}'
    if nested:  # the same name twice inside an extra object: the codec looks everywhere
        return raw[:-1] + f',"extra":{{{extra},{extra}}}}}'.encode()
    twice = extra if name in doc else f"{extra},{extra}"
    return raw[:-1] + b"," + twice.encode() + b"}"


def _padded(doc: dict[str, Any], over: int) -> bytes:
    base = dump(doc | {"padding": ""})
    return dump(doc | {"padding": "x" * (MAX_EVENT_BYTES - len(base) + over)})


def _surrogate(doc: dict[str, Any], name: str, char: str) -> bytes:
    return dump(doc | {name: doc[name][:10] + char})


surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)

# Each rule the schema cannot express: messages valid but for that rule.
BEYOND_SCHEMA: dict[str, st.SearchStrategy[bytes]] = {
    "duplicate_field": st.builds(
        _duplicated,
        valid_docs,
        st.sampled_from([*FIELDS, "extra_name"]),
        json_values,
        st.booleans(),
    ).filter(schema_accepts),
    "value_too_large": st.builds(_padded, valid_docs, st.integers(1, 100)),
    "wrong_type": st.builds(
        lambda doc, number: dump(doc)[:-1] + b',"schema_version":' + number + b"}",
        valid_docs.map(lambda doc: {k: v for k, v in doc.items() if k != "schema_version"}),
        st.sampled_from([b"1.0", b"1e0", b"1E+0", b"10e-1", b"1.000", b"0.1e1"]),
    ),
    "bad_event_id": st.builds(_surrogate, valid_docs, st.just("event_id"), surrogates),
    "bad_record_id": st.builds(_surrogate, valid_docs, st.just("record_id"), surrogates),
    "bad_occurred_at": with_field(
        "occurred_at", edge_stamps().filter(lambda t: _outside_range(t) and t[:4] >= "1969")
    ),
}

skipped = st.builds(
    lambda doc, kind: dump(doc | {"type": kind}),
    st.fixed_dictionaries({}, optional={name: json_values for name in FIELDS}),
    st.text().filter(lambda kind: kind != EVENT_TYPE),
)


@st.composite
def byte_mutants(draw: st.DrawFn) -> bytes:
    """A valid message with a few bytes inserted or removed anywhere."""
    raw = dump(draw(valid_docs), ascii_only=draw(st.booleans()))
    at = draw(st.integers(0, len(raw)))
    if draw(st.booleans()):
        return raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at:]
    return raw[:at] + raw[at + 1 :]


any_objects = st.fixed_dictionaries(
    {}, optional={name: json_values | st.just(good) for name, good in EXAMPLE.items()}
).map(dump)
messages = st.one_of(
    valid_docs.map(dump),
    st.builds(dump, valid_docs, st.just(False)),
    with_field("occurred_at", stamp_texts() | edge_stamps()),
    skipped,
    any_objects,
    byte_mutants(),
    *INVALID.values(),
    *BEYOND_SCHEMA.values(),
)


# -- the properties -----------------------------------------------------------------------


@settings(max_examples=1500, deadline=None)
@given(messages)
def test_schema_and_codec_agree_on_generated_messages(raw: bytes) -> None:
    assert_same_verdict(raw)


@settings(deadline=None)
@given(valid_docs, st.booleans())
def test_valid_messages_are_counted_and_accepted(doc: dict[str, Any], ascii_only: bool) -> None:
    raw = dump(doc, ascii_only)
    assert codec_verdict(raw) == "counted"
    assert schema_accepts(raw)


@pytest.mark.parametrize("code", sorted(INVALID))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_class_of_invalid_message_is_refused_by_both(code: str, data: st.DataObject) -> None:
    raw = data.draw(INVALID[code])
    assert codec_verdict(raw) == code
    assert not schema_accepts(raw)


@settings(deadline=None)
@given(skipped)
def test_other_types_are_skipped_by_the_codec_and_refused_only_for_type(raw: bytes) -> None:
    assert assert_same_verdict(raw) == "skipped"


@pytest.mark.parametrize("code", sorted(BEYOND_SCHEMA))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_each_rule_beyond_json_schema_is_described_and_enforced_by_the_codec(
    code: str, data: st.DataObject
) -> None:
    raw = data.draw(BEYOND_SCHEMA[code])
    assert schema_accepts(raw), "the schema cannot say this rule: it accepts the message"
    assert codec_verdict(raw) == code
    assert f"`{code}`" in SCHEMA["description"]


def test_the_key_rule_is_beyond_the_value_schema_and_enforced_by_the_codec() -> None:
    raw = dump(EXAMPLE)
    assert schema_accepts(raw)
    assert codec_verdict(raw, b"org-bufdir-43") == "key_mismatch"
    assert codec_verdict(raw, EXAMPLE["org_id"].encode()) == "counted"
    assert codec_verdict(raw, None) == "counted"
    assert "`key_mismatch`" in SCHEMA["description"]


def test_a_tombstone_is_refused_and_described() -> None:
    assert codec_verdict(None) == "value_missing"
    assert "`value_missing`" in SCHEMA["description"]


def test_every_error_code_is_refused_by_the_schema_or_described_in_it() -> None:
    beyond = {code for codes, _ in contract.INEXPRESSIBLE for code in codes}
    assert set(INVALID) | beyond == set(ERROR_CODES)
    assert set(BEYOND_SCHEMA) | {"key_mismatch", "value_missing", "not_utf8", "not_json"} == beyond
