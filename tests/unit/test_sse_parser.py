"""The one SSE parser of the tests and benches (tests/support/sse.py), after the WHATWG rules."""

from __future__ import annotations

import pytest

from tests.support.sse import Block, SseParser


def parse(*pieces: bytes | str) -> list[Block]:
    parser = SseParser(clock=lambda: 1.0)
    return [block for piece in pieces for block in parser.feed(piece)]


def test_fields_of_one_block() -> None:
    (block,) = parse(b'id: 7\nevent: count\nretry: 3000\ndata: {"a": 1}\n\n')
    assert (block.id, block.event, block.retry, block.data) == ("7", "count", "3000", '{"a": 1}')
    assert block.retry_ms == 3000
    assert block.json() == {"a": 1}
    assert block.comments == []
    assert block.received == 1.0


def test_one_space_after_the_colon_is_dropped_and_no_colon_is_an_empty_value() -> None:
    (block,) = parse("data:x\ndata:  y\ndata\nid\n\n")
    assert block.data == "x\n y\n"
    assert block.id == ""


def test_multi_line_data_is_joined_with_lf() -> None:
    (block,) = parse("data: one\ndata: two\ndata: three\n\n")
    assert block.data == "one\ntwo\nthree"


def test_comments_and_blocks_without_data() -> None:
    first, second = parse(": keep-alive\n\nretry: 3000\n\n")
    assert first.comments == ["keep-alive"] and first.data is None
    assert second.retry_ms == 3000 and second.data is None and second.comments == []


def test_empty_blocks_and_unknown_fields_are_passed_over() -> None:
    blocks = parse("\n\n\ncolor: red\ndata: x\n\n\n")
    assert [b.data for b in blocks] == ["x"]


def test_retry_that_is_not_digits_sets_no_reconnection_time() -> None:
    (block,) = parse("retry: 3s\ndata: x\n\n")
    assert block.retry == "3s" and block.retry_ms is None


def test_id_with_nul_is_ignored_and_the_last_id_is_kept_across_blocks() -> None:
    parser = SseParser()
    parser.feed("id: 1\ndata: a\n\n")
    (block,) = parser.feed("id: 2\0\ndata: b\n\n")
    assert block.id is None
    assert parser.last_event_id == "1"


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_every_line_end(end: str) -> None:
    text = f"id: 1{end}data: a{end}data: b{end}{end}: c{end}{end}"
    blocks = parse(text.encode())
    assert [(b.id, b.data, b.comments) for b in blocks] == [("1", "a\nb", []), (None, None, ["c"])]


def test_mixed_line_ends() -> None:
    blocks = parse("data: a\r\ndata: b\rdata: c\n\r\n")
    assert [b.data for b in blocks] == ["a\nb\nc"]


def test_a_block_split_across_feeds() -> None:
    parser = SseParser()
    assert parser.feed(b"id: 4") == []
    assert parser.feed(b"2\nda") == []
    assert parser.feed(b'ta: {"n": ') == []
    assert parser.feed(b"1}\n") == []
    (block,) = parser.feed(b"\n")
    assert (block.id, block.json()) == ("42", {"n": 1})


def test_crlf_split_between_feeds_is_one_line_end() -> None:
    blocks = parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n")
    assert [b.data for b in blocks] == ["a\nb"]


def test_a_utf8_character_split_across_feeds() -> None:
    encoded = "data: ørg\n\n".encode()
    split = encoded.index(b"\xc3") + 1
    (block,) = parse(encoded[:split], encoded[split:])
    assert block.data == "ørg"


def test_a_leading_byte_order_mark_is_dropped() -> None:
    (block,) = parse(b"\xef\xbb\xbfdata: x\n\n")
    assert block.data == "x"


def test_an_unfinished_block_at_the_end_is_not_returned() -> None:
    assert parse("data: x\n") == []
