r"""`python -m events.validate FILE|-`: check messages as the projector would, before publishing.

Each line is one message, read the way `kcat -P -K '\t'` reads its input: an empty line is
no message; a line with a tab is `key<TAB>value` (the first tab splits), any other line is a
value without a key. `-Z`, as in kcat, makes an empty value a null value (a tombstone) and
an empty key a null key; `--no-keys` reads every line as a value; `-K` picks another
key delimiter. For each bad message it prints one line on stdout,

    FILE:LINE: CODE: message

where CODE is what the projector would put in the `dlq.error.code` header: the verdict is the
projector's own decoder's (`events.codec.decode_for_count`), not a second implementation.
Messages of another `type` are noted on stderr (the projector skips them; `--strict` counts
them as bad). Exit status: 0 every message is good, 1 some message is bad, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import BinaryIO, TextIO

from events.codec import ERROR_CODES, InvalidEvent, SkippedEvent, decode_for_count
from events.schema import JSON_SCHEMA_FILE

SKIPPED = "skipped"


@dataclass
class Tally:
    """What one input held: messages checked, and the bad and skipped ones among them."""

    messages: int = 0
    bad: dict[str, int] = field(default_factory=dict)
    skipped: int = 0


def split_line(
    line: bytes, delimiter: bytes | None, null_empty: bool
) -> tuple[bytes | None, bytes | None]:
    """(key, value) of one input line, as `kcat -P -K DELIMITER [-Z]` would publish it."""
    if delimiter:
        at = line.find(delimiter)
        if at >= 0:
            key, value = line[:at], line[at + len(delimiter) :]
            if null_empty:
                return key or None, value or None
            return key, value
    return None, line


def check(key: bytes | None, value: bytes | None) -> tuple[str, str] | None:
    """(code, message) for a message the projector would dead-letter or skip; None if counted."""
    try:
        result = decode_for_count(value, key)
    except InvalidEvent as error:
        return error.code, error.message
    if isinstance(result, SkippedEvent):
        return SKIPPED, f"type {result.type!r} is not record.created: the projector skips it"
    return None


def validate_lines(
    lines: Iterable[bytes],
    name: str,
    delimiter: bytes | None,
    null_empty: bool,
    strict: bool,
    out: TextIO,
    notes: TextIO,
) -> Tally:
    """Check every message of `lines`, reporting each bad (or skipped) one; return the tally."""
    tally = Tally()
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if not line:
            continue  # kcat publishes nothing for an empty line
        tally.messages += 1
        problem = check(*split_line(line, delimiter, null_empty))
        if problem is None:
            continue
        code, message = problem
        if code == SKIPPED and not strict:
            tally.skipped += 1
            print(f"{name}:{number}: note: {message}", file=notes)
            continue
        tally.bad[code] = tally.bad.get(code, 0) + 1
        print(f"{name}:{number}: {code}: {message}", file=out)
    return tally


def _delimiter(text: str) -> bytes:
    """A delimiter given on the command line, with backslash escapes (`\\t`) as kcat takes them."""
    value = codecs.escape_decode(text.encode())[0]
    if not isinstance(value, bytes) or not value:
        raise argparse.ArgumentTypeError("the key delimiter cannot be empty")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m events.validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="input files; - is stdin")
    parser.add_argument(
        "-K", "--key-delimiter", type=_delimiter, default=b"\t", metavar="DELIM",
        help="what separates the key from the value (default: a tab)",
    )  # fmt: skip
    parser.add_argument("--no-keys", action="store_true", help="lines are values only")
    parser.add_argument(
        "-Z", dest="null_empty", action="store_true",
        help="an empty value is a null value (tombstone), an empty key a null key",
    )  # fmt: skip
    parser.add_argument(
        "--strict", action="store_true", help="messages of another type are bad too"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    parser.add_argument(
        "--codes", action="store_true", help="list the dead-letter error codes and exit"
    )
    parser.add_argument(
        "--print-schema", action="store_true", help="print the value's JSON Schema and exit"
    )
    return parser


def schema_text() -> str:
    """The message value's JSON Schema, as shipped in the installed package."""
    return resources.files("events").joinpath(JSON_SCHEMA_FILE).read_text(encoding="utf-8")


def main(
    argv: list[str] | None = None,
    stdin: BinaryIO | None = None,
    out: TextIO | None = None,
    notes: TextIO | None = None,
) -> int:
    """Command-line entry point; returns the exit status."""
    out = out or sys.stdout
    notes = notes or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    if args.codes:
        for code, when in ERROR_CODES.items():
            print(f"{code}\t{when}", file=out)
        return 0
    if args.print_schema:
        out.write(schema_text())
        return 0
    if not args.files:
        parser.error("give a FILE, or - for stdin")
    delimiter = None if args.no_keys else args.key_delimiter
    status = 0
    for path in args.files:
        name = "<stdin>" if path == "-" else path
        try:
            with contextlib.ExitStack() as stack:
                stream = (
                    (stdin or sys.stdin.buffer)
                    if path == "-"
                    else stack.enter_context(open(path, "rb"))
                )
                tally = validate_lines(
                    stream, name, delimiter, args.null_empty, args.strict, out, notes
                )
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror or exc}", file=notes)
            status = 2
            continue
        if tally.bad and status == 0:
            status = 1
        if not args.quiet:
            bad = sum(tally.bad.values())
            codes = ", ".join(f"{code} {n}" for code, n in sorted(tally.bad.items()))
            print(
                f"{name}: {tally.messages} messages, {bad} bad"
                + (f" ({codes})" if codes else "")
                + (f", {tally.skipped} of another type (skipped)" if tally.skipped else ""),
                file=notes,
            )
    return status


if __name__ == "__main__":
    sys.exit(main())
