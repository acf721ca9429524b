"""Helpers that build the inputs of API calls: a count request body, a live-stream path."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from api.middleware import BASE_PATH
from events.schema import format_utc
from projector.buckets import MAX_SECOND


def count_body(org_id: str, start: int, end: int) -> dict[str, Any]:
    """The body of a count request."""
    return {"org_id": org_id, "range": {"start": format_utc(start), "end": format_utc(end)}}


def stream_path(org_id: str, start: int = 0, end: int = MAX_SECOND) -> str:
    """The live-stream path of one org and range."""
    query = urlencode({"org_id": org_id, "start": format_utc(start), "end": format_utc(end)})
    return f"{BASE_PATH}/stream?{query}"
