"""Live streams against the real API (gunicorn, gevent) and the real projector process."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import requests

from api.middleware import BASE_PATH
from config import Settings
from scripts.harness import free_port, start_projector
from tests.integration.projection import running_projector
from tests.support.api_inputs import stream_path
from tests.support.streams import Block, SseStream, api_running, produce

UTC_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
GRACE = 2


def _check_events(events: list[Block], org_id: str) -> None:
    """Contract shape, strictly increasing ids, counts never falling, at most ~10 events/s."""
    ids = [int(e.id or "0") for e in events]
    assert ids == sorted(set(ids)), ids
    counts = [e.json()["record_count"] for e in events]
    assert counts == sorted(counts), counts  # type: ignore[type-var]
    for event in events:
        data = event.json()
        assert list(data) == ["org_id", "record_count", "is_complete", "timestamp"]
        assert data["org_id"] == org_id
        assert UTC_SECOND.fullmatch(str(data["timestamp"]))
    times = [e.received for e in events]
    for i in range(len(times)):
        within_a_second = [t for t in times[i:] if t - times[i] < 1.0]
        assert len(within_a_second) <= 11, times


def _opening(stream: SseStream, org: str) -> Block:
    """Check the headers and the start of a stream; its first event."""
    assert stream.status == 200
    assert stream.headers["content-type"] == "text/event-stream"
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    blocks = stream.blocks()
    opening = next(blocks)
    assert opening.retry == "3000"
    first = opening if opening.data is not None else next(blocks)
    data = first.json()
    assert data == {
        "org_id": org,
        "record_count": 0,
        "is_complete": False,
        "timestamp": data["timestamp"],
    }
    return first


def test_stream_rises_to_the_exact_count(settings: Settings, topics: str) -> None:
    settings = replace(settings, port=free_port())
    now = int(time.time())
    start, end = now - 3600, now + 3600
    org = "org-live-1"
    with api_running(settings), running_projector(settings):
        stream = SseStream(settings.port, stream_path(org, start, end))
        events = [_opening(stream, org)]
        # Four bursts of ten in range, each awaited; out-of-range and other-org events too.
        for burst in range(4):
            produce(settings, org, [start + burst * 60 + i for i in range(10)])
            produce(settings, org, [start - 1, end + 1])
            produce(settings, "org-live-other", [start + 5] * 5)
            target = 10 * (burst + 1)
            events += stream.read_until(lambda d, t=target: d["record_count"] >= t, timeout=90)
            assert events[-1].json()["record_count"] == target
        stream.close()
    assert all(e.json()["is_complete"] is False for e in events)
    assert {10, 20, 30, 40} <= {e.json()["record_count"] for e in events}
    _check_events(events, org)


def test_is_complete_turns_true_with_no_further_events(settings: Settings, topics: str) -> None:
    """A range that ended in the past, before the projector has caught up: incomplete at
    first; the projector counts what was produced and catches up; the stream says complete."""
    settings = replace(settings, port=free_port(), count_grace_seconds=GRACE)
    now = int(time.time())
    start, end = now - 3600, now - 1
    org = "org-live-2"
    with api_running(settings):
        stream = SseStream(settings.port, stream_path(org, start, end))
        first = _opening(stream, org)
        produce(settings, org, [start + i for i in range(12)])
        projector = start_projector(settings)
        try:
            events = stream.read_until(lambda d: d["is_complete"] is True, timeout=90)
        finally:
            stream.close()
            projector.stop()
    # Nothing was produced after the twelve: the flip came by itself, with the exact count.
    assert events[-1].json()["record_count"] == 12
    assert all(e.json()["is_complete"] is False for e in events[:-1])
    _check_events([first, *events], org)


def test_reconnect_with_last_event_id_gets_the_count_at_once(
    settings: Settings, topics: str
) -> None:
    settings = replace(settings, port=free_port(), sse_keepalive_seconds=1)
    path = stream_path("org-reconnect", 0, 10**9)
    with api_running(settings, WEB_CONCURRENCY="2"):
        stream = SseStream(settings.port, path)
        first = next(stream.events())
        assert stream.status == 200
        stream.close()
        # A reconnect (maybe to the other worker) gets the count at once, with a higher id.
        started = time.monotonic()
        again = SseStream(settings.port, path, last_event_id=first.id)
        event = next(again.events())
        assert time.monotonic() - started < 1.0
        assert int(event.id or "0") > int(first.id or "0")
        assert event.json()["record_count"] == 0
        # The keep-alive comment comes when nothing else is sent.
        comments = next(b for b in again.blocks() if b.comments)
        assert comments.comments == ["keep-alive"]
        again.close()


def test_stream_by_snapshot_id_and_doubled_path(settings: Settings, topics: str) -> None:
    settings = replace(settings, port=free_port())
    body = {
        "org_id": "org-snap",
        "range": {"start": "2026-01-01T01:00:00+01:00", "end": "2026-01-31T23:59:59Z"},
    }
    with api_running(settings):
        # One connection, closed at once (a lingering keep-alive would slow the shutdown).
        with requests.Session() as session:
            created = session.post(
                f"http://127.0.0.1:{settings.port}{BASE_PATH}",
                json=body,
                timeout=5,
                headers={"Connection": "close"},
            )
        assert created.status_code == 201, created.text
        snapshot_id = created.json()["id"]
        stream = SseStream(settings.port, f"{BASE_PATH}{BASE_PATH}/stream?id={snapshot_id}")
        assert stream.status == 200
        assert next(stream.events()).json()["org_id"] == "org-snap"
        stream.close()


def test_stopping_the_api_ends_open_streams_at_once(settings: Settings) -> None:
    """SIGTERM: streams end (EventSource reconnects elsewhere) instead of holding the worker
    for gunicorn's graceful_timeout (10 s)."""
    settings = replace(settings, port=free_port())
    with api_running(settings) as api:
        streams = [SseStream(settings.port, stream_path("org-stop", 0, 10)) for _ in range(5)]
        for stream in streams:
            next(stream.events())
        started = time.monotonic()
        assert api.stop() == 0
        assert time.monotonic() - started < 5
        for stream in streams:
            assert list(stream.blocks()) == []  # the response ended cleanly
            stream.close()
