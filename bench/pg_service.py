"""The same service on PostgreSQL: our POST contract, counted by `COUNT(*)` over an index.

    PG_SERVICE_CONNINFO='host=... port=... user=postgres dbname=postgres' \\
        python -m gunicorn --config api/gunicorn_conf.py bench.pg_service:app

What a team would build instead of ours, for the benchmarks to compare our whole POST with
(docs: /work/shared/notes/baselines.md, "The same service on PostgreSQL"). It serves
`POST /api/v1/period-record-counts` exactly as the API does on the outside: the body is
validated by `api.schemas.CountRequestSchema` (400 problem+json when it is not JSON, 422
with the API's error layout when the schema refuses it), the answer is
`api.schemas.count_result` of a snapshot, 201 + Location for a new (org, range), 200 for an
existing one. It runs under gunicorn with the API's own config file (gevent workers,
WEB_CONCURRENCY of them, the same keepalive and limits): only the storage differs.

Storage: `records` as bench/pg.py's `load_records` builds it (index on (org_id,
occurred_at), every page all-visible, so the count is an index-only scan), and `snapshots`
with one row per (org_id, range_start, range_end) (unique constraint) plus indexes for the
listings our snapshot store keeps (newest first, all and per org). A POST is ONE statement,
so one round trip and one transaction, as ours is one Redis script: a CTE counts, the
INSERT ... ON CONFLICT DO UPDATE creates or refreshes the snapshot, `xmax = 0` says which.

is_complete: PostgreSQL has no projection lag (a committed row is counted at once), so a
snapshot is complete as soon as its range has ended: range_end + 1 <= now (the last
second of the range is over). Ours waits for the projection to have caught up past it.

gevent: psycopg 3 (3.1.14 on) checks, when `psycopg.waiting` is imported, whether gevent
patched `select`, and then waits on sockets with functions gevent made cooperative instead
of its C wait. gunicorn's gevent worker patches before it imports this module, so the
import below is late enough; `app` refuses to start if psycopg chose the C wait anyway.
Each worker keeps up to PG_SERVICE_POOL (default 8) connections in a gevent queue.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import gevent.queue
import psycopg
import psycopg.waiting
from flask import Flask, Response, request
from marshmallow import ValidationError

from api.errors import _validation_problem, problem
from api.middleware import BASE_PATH
from api.schemas import CountRequestSchema
from api.snapshots import Snapshot
from api.views import count_response

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Events are whole seconds, but a bound is inclusive to the end of its second.
SECOND_SLACK = timedelta(microseconds=999_999)
SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    range_start bigint NOT NULL,
    range_end bigint NOT NULL,
    record_count bigint NOT NULL,
    is_complete boolean NOT NULL,
    snapshot_at bigint NOT NULL,
    UNIQUE (org_id, range_start, range_end)
);
CREATE INDEX IF NOT EXISTS snapshots_newest ON snapshots (snapshot_at DESC);
CREATE INDEX IF NOT EXISTS snapshots_org_newest ON snapshots (org_id, snapshot_at DESC);
"""
COUNT_UPSERT = """
WITH counted AS (
    SELECT COUNT(*) AS n FROM records
    WHERE org_id = %(org_id)s AND occurred_at BETWEEN %(start)s AND %(end)s
)
INSERT INTO snapshots AS s
    (id, org_id, range_start, range_end, record_count, is_complete, snapshot_at)
SELECT %(id)s, %(org_id)s, %(range_start)s, %(range_end)s, n, %(is_complete)s, %(at)s
FROM counted
ON CONFLICT (org_id, range_start, range_end) DO UPDATE SET
    record_count = EXCLUDED.record_count,
    is_complete = EXCLUDED.is_complete,
    snapshot_at = EXCLUDED.snapshot_at
RETURNING s.id, s.record_count, s.is_complete, s.snapshot_at, (xmax = 0) AS created
"""


def count_params(org_id: str, start: int, end: int, now: float, new_id: str) -> dict[str, Any]:
    """The statement's parameters for [start, end] (inclusive whole UTC seconds) at `now`."""
    return {
        "org_id": org_id,
        "start": EPOCH + timedelta(seconds=start),
        "end": EPOCH + timedelta(seconds=end) + SECOND_SLACK,
        "id": new_id,
        "range_start": start,
        "range_end": end,
        "is_complete": end + 1 <= now,  # no projection lag: complete once the range is over
        "at": int(now),
    }


def create_schema(conninfo: str) -> None:
    """Create `snapshots` (before the workers start: two racing CREATEs could collide)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(SCHEMA)


class Pool:
    """Up to `size` connections of one worker, lent one greenlet at a time."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo, self._size, self._made = conninfo, size, 0
        self._idle: gevent.queue.LifoQueue[psycopg.Connection[Any]] = gevent.queue.LifoQueue()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for the duration of the block; a broken one is dropped, not returned."""
        if self._idle.empty() and self._made < self._size:
            self._made += 1
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True)
            except BaseException:
                self._made -= 1
                raise
        else:
            conn = self._idle.get(timeout=10)
        try:
            yield conn
        finally:
            if conn.closed or conn.broken:
                self._made -= 1
                conn.close()
            else:
                self._idle.put(conn)


def count(pool: Pool, org_id: str, start: int, end: int) -> tuple[Snapshot, bool]:
    """Count and create or refresh the (org, range) snapshot in one statement."""
    params = count_params(org_id, start, end, time.time(), f"count-snapshot-{uuid.uuid4().hex}")
    with pool.connection() as conn:
        row = conn.execute(COUNT_UPSERT, params, prepare=True).fetchone()
    assert row is not None
    snapshot_id, record_count, complete, at, created = row
    return Snapshot(snapshot_id, org_id, start, end, record_count, complete, at), created


def create_app(conninfo: str, pool_size: int = 8) -> Flask:
    """The Flask app: POST a count, GET /healthz."""
    if psycopg.waiting.wait is psycopg.waiting.wait_c and _gevent_patched():
        raise RuntimeError("psycopg imported before gevent patched select: it would block")
    app = Flask(__name__)
    pool = Pool(conninfo, pool_size)

    @app.post(BASE_PATH)
    def post_count() -> Response:
        data = request.get_json(silent=True)
        if data is None:
            return problem(400, "The request body is not valid JSON.")
        try:
            body = CountRequestSchema().load(data)
        except ValidationError as exc:
            return _validation_problem(422, {"json": exc.messages}, {})
        window = body["range"]
        snapshot, created = count(pool, body["org_id"], window["start"], window["end"])
        return count_response(snapshot, created)

    @app.get("/healthz")
    def healthz() -> Response:
        with pool.connection() as conn:
            conn.execute("SELECT 1")
        return app.json.response({"status": "ok"})

    @app.errorhandler(psycopg.OperationalError)
    def unavailable(exc: psycopg.OperationalError) -> Response:
        return problem(503, "The database is unavailable; try again shortly.")

    return app


def _gevent_patched() -> bool:
    import sys

    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("select"))


def __getattr__(name: str) -> Any:
    """`bench.pg_service:app` for gunicorn, built on first access from PG_SERVICE_CONNINFO."""
    if name == "app":
        app = create_app(
            os.environ["PG_SERVICE_CONNINFO"], int(os.environ.get("PG_SERVICE_POOL", "8"))
        )
        globals()["app"] = app
        return app
    raise AttributeError(name)
