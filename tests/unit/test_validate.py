"""`python -m events.validate`: kcat's line format, one line per bad message, exit status."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from events import contract
from events.codec import ERROR_CODES, MAX_EVENT_BYTES
from events.validate import main, split_line

ROOT = Path(__file__).resolve().parents[2]
GOOD = dict(contract.EXAMPLE)
KEY = GOOD["org_id"]


def value(**changes: object) -> str:
    return json.dumps({k: v for k, v in (GOOD | changes).items() if v is not None})


# One line per DLQ error code and valid lines between them; (line, the code expected or None).
# Read with -Z, as `kcat -P -K '\t' -Z` would publish them.
LINES: list[tuple[bytes, str | None]] = [
    (f"{KEY}\t{value()}".encode(), None),
    (f"{KEY}\t".encode(), "value_missing"),
    (f"{KEY}\t{value(padding='x' * MAX_EVENT_BYTES)}".encode(), "value_too_large"),
    (value().encode(), None),  # no key: the projector accepts it
    (b"org-1\t\xff{}", "not_utf8"),
    (f"{KEY}\t{{".encode(), "not_json"),
    (f'{KEY}\t{value()[:-1]}, "org_id": "{KEY}"}}'.encode(), "duplicate_field"),
    (b"", None),  # an empty line is no message
    (f"{KEY}\t[1, 2]".encode(), "not_object"),
    (f"{KEY}\t{value(record_id=None)}".encode(), "missing_field"),
    (f"{KEY}\t{value(occurred_at=1774521852)}".encode(), "wrong_type"),
    (f"{KEY}\t{value(schema_version=2)}".encode(), "bad_schema_version"),
    (f"{KEY}\t{value(type='record.deleted')}".encode(), None),  # skipped, not bad
    (f"{KEY}\t{value(event_id='')}".encode(), "bad_event_id"),
    (f"-org\t{value(org_id='-org')}".encode(), "bad_org_id"),
    (f"{KEY}\t{value(record_id='r' * 129)}".encode(), "bad_record_id"),
    (f"{KEY}\t{value(occurred_at='2026-03-26T10:44:12')}".encode(), "bad_occurred_at"),
    (f"org-other\t{value()}".encode(), "key_mismatch"),
    (f"\t{value()}".encode(), None),  # -Z: an empty key is a null key
    (f"{KEY}\t{value(occurred_at='2026-03-26t12:44:12.123456789+02:00')}".encode(), None),
]
EXPECTED = [(n, code) for n, (_, code) in enumerate(LINES, 1) if code is not None]


def run(argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    out, notes = io.StringIO(), io.StringIO()
    status = main(argv, stdin=io.BytesIO(stdin), out=out, notes=notes)
    return status, out.getvalue(), notes.getvalue()


def reported(out: str, name: str) -> list[tuple[int, str]]:
    """(line number, code) of each report line `NAME:LINE: CODE: message`."""
    rows = []
    for line in out.splitlines():
        head, code, message = line.split(": ", 2)
        where, number = head.rsplit(":", 1)
        assert where == name and message
        rows.append((int(number), code))
    return rows


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    path = tmp_path / "events.tsv"
    path.write_bytes(b"\n".join(line for line, _ in LINES) + b"\n")
    return path


def test_the_mixed_file_covers_every_dead_letter_code() -> None:
    assert sorted(code for _, code in EXPECTED) == sorted(ERROR_CODES)


def test_every_bad_line_gets_the_projectors_code(mixed: Path) -> None:
    status, out, notes = run(["-Z", str(mixed)])
    assert status == 1
    assert reported(out, str(mixed)) == EXPECTED
    skipped_line = next(n for n, (raw, _) in enumerate(LINES, 1) if b"record.deleted" in raw)
    assert f"{mixed}:{skipped_line}: note: type 'record.deleted'" in notes
    messages = sum(1 for raw, _ in LINES if raw)
    assert f"{mixed}: {messages} messages, {len(EXPECTED)} bad" in notes


def test_without_z_an_empty_value_and_key_are_sent_as_they_are(mixed: Path) -> None:
    status, out, _ = run([str(mixed)])
    codes = dict(reported(out, str(mixed)))
    assert status == 1
    numbers = {raw: n for n, (raw, _) in enumerate(LINES, 1)}
    assert codes[numbers[f"{KEY}\t".encode()]] == "not_json"  # an empty value, no tombstone
    assert codes[numbers[f"\t{value()}".encode()]] == "key_mismatch"  # "" is not the org_id


def test_good_lines_pass(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"\n".join(line for line, code in LINES if code is None and line))
    status, out, notes = run(["-Z", "-q", str(good)])
    assert (status, out) == (0, "")
    assert [line.split(": ")[1] for line in notes.splitlines()] == ["note"]  # -q: no summary
    status, out, _ = run(["-Z", "--strict", str(good)])
    assert status == 1  # the record.deleted line
    assert [code for _, code in reported(out, str(good))] == ["skipped"]


def test_stdin_and_other_delimiters() -> None:
    lines = f"{KEY}|{value()}\norg-x|{value()}\n".encode()
    status, out, _ = run(["-K", "|", "-"], stdin=lines)
    assert (status, reported(out, "<stdin>")) == (1, [(2, "key_mismatch")])
    # --no-keys: the whole line is the value, tabs included (JSON allows them between tokens).
    assert run(["--no-keys", "-q", "-"], stdin=value().replace(", ", ",\t").encode())[0] == 0


@pytest.mark.parametrize(
    ("line", "delimiter", "null_empty", "expected"),
    [
        (b"k\tv", b"\t", False, (b"k", b"v")),
        (b"k\tv\tw", b"\t", False, (b"k", b"v\tw")),  # the first delimiter splits
        (b"v", b"\t", False, (None, b"v")),  # no delimiter: no key
        (b"\tv", b"\t", False, (b"", b"v")),
        (b"\tv", b"\t", True, (None, b"v")),
        (b"k\t", b"\t", False, (b"k", b"")),
        (b"k\t", b"\t", True, (b"k", None)),
        (b"k\tv", None, False, (None, b"k\tv")),
        (b"k::v", b"::", False, (b"k", b"v")),
    ],
)
def test_lines_split_as_kcat_splits_them(
    line: bytes, delimiter: bytes | None, null_empty: bool, expected: tuple[object, object]
) -> None:
    assert split_line(line, delimiter, null_empty) == expected


def test_codes_schema_and_usage() -> None:
    status, out, _ = run(["--codes"])
    assert status == 0 and [row.split("\t")[0] for row in out.splitlines()] == list(ERROR_CODES)
    status, out, _ = run(["--print-schema"])
    assert status == 0 and json.loads(out) == contract.record_created_schema()
    assert run(["/no/such/file"])[0] == 2
    with pytest.raises(SystemExit) as caught:
        run([])
    assert caught.value.code == 2


def test_as_a_command_on_a_file_and_on_stdin(mixed: Path) -> None:
    command = [sys.executable, "-m", "events.validate", "-Z"]
    on_file = subprocess.run([*command, str(mixed)], capture_output=True, text=True, cwd=ROOT)
    assert on_file.returncode == 1, on_file.stderr
    assert reported(on_file.stdout, str(mixed)) == EXPECTED
    on_stdin = subprocess.run(
        [*command, "-"], input=mixed.read_bytes(), capture_output=True, cwd=ROOT
    )
    assert on_stdin.returncode == 1
    assert reported(on_stdin.stdout.decode(), "<stdin>") == EXPECTED
