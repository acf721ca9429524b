"""One incremental parser of server-sent events, after the WHATWG EventSource rules: feed it
bytes (or text) as they come, in any pieces, and get back each block a blank line ended.

Lines end at CRLF, CR or LF (a CR at the end of one piece and an LF at the start of the next are
one line end); a leading byte order mark is dropped; a line starting with ":" is a comment; else
the field name runs to the first ":" and one space after it is dropped from the value. `data`
lines are joined with LF, `id` without NUL, `event` and `retry` are kept as they came; other
fields are ignored. Unlike EventSource, a block without data (only `retry:` or a comment) is
returned too, with `data` None, so that tests can see keep-alives; an empty block (a blank line
after a blank line) is not. An unfinished block at the end of the stream is never returned.
"""

from __future__ import annotations

import codecs
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass
class Block:
    """One block of a stream: its fields, its comments, and when a blank line ended it."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: str | None = None
    comments: list[str] = field(default_factory=list)
    received: float = 0.0

    @property
    def retry_ms(self) -> int | None:
        """The reconnection time the block sets, if its `retry` is all ASCII digits."""
        if self.retry is None or not self.retry.isascii() or not self.retry.isdigit():
            return None
        return int(self.retry)

    def json(self) -> dict[str, object]:
        """The data as a JSON object."""
        assert self.data is not None, self
        value = json.loads(self.data)
        assert isinstance(value, dict)
        return value


class SseParser:
    """Blocks out of a stream of pieces; `clock` stamps each block's `received`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # the start of a line not yet ended
        self._skip_lf = False  # the last piece ended with CR: an LF next is the same line end
        self._started = False  # past a possible byte order mark
        self._block = Block()
        self._empty = True
        self._data: list[str] = []
        self.last_event_id = ""  # as EventSource keeps it, across blocks

    def feed(self, piece: bytes | str) -> list[Block]:
        """Take the next piece of the stream; the blocks it ended, in order."""
        text = self._decoder.decode(piece) if isinstance(piece, bytes) else piece
        if not text:
            return []
        if self._skip_lf:
            self._skip_lf = False
            text = text.removeprefix("\n")
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        buffer = self._pending + text
        blocks: list[Block] = []
        start = 0
        for end in LINE_END.finditer(buffer):
            self._line(buffer[start : end.start()], blocks)
            start = end.end()
        self._pending = buffer[start:]
        self._skip_lf = start == len(buffer) and buffer.endswith("\r")
        return blocks

    def _line(self, line: str, blocks: list[Block]) -> None:
        if line == "":
            if not self._empty:
                block = self._block
                block.data = "\n".join(self._data) if self._data else None
                block.received = self._clock()
                blocks.append(block)
            self._block, self._empty, self._data = Block(), True, []
            return
        self._empty = False
        if line.startswith(":"):
            self._block.comments.append(line[1:].removeprefix(" "))
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._block.id = self.last_event_id = value
        elif name == "event":
            self._block.event = value
        elif name == "retry":
            self._block.retry = value
