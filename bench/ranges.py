"""The ranges the latency benches count, and the ways to count one: a POST to an API, a
`COUNT(*)` in PostgreSQL; every count is checked against the oracle's."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.http_client import HttpClient
from events.schema import format_utc

DAY = 86_400
SPANS = (
    ("1 s", 1),
    ("1 day", DAY),
    ("90 days", 90 * DAY),
    ("1 year", 365 * DAY),
    ("10 years", 3652 * DAY),
)
PATH = "/api/v1/period-record-counts"
SQL = "SELECT COUNT(*) FROM records WHERE org_id = %s AND occurred_at BETWEEN %s AND %s"
# Events are whole seconds, but a bound is inclusive to the end of its second.
EPOCH, SECOND_SLACK = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=999_999)


@dataclass(frozen=True)
class Query:
    """One range to count: span name, org, inclusive whole-second bounds, the POST body."""

    span: str
    org: str
    start: int
    end: int

    def body(self) -> bytes:
        """The POST body."""
        window = {"start": format_utc(self.start), "end": format_utc(self.end)}
        return json.dumps({"org_id": self.org, "range": window}).encode()


def random_queries(
    rng: random.Random,
    pick_org: Callable[[random.Random], str],
    lo: int,
    hi: int,
    n: int,
    spans: Sequence[tuple[str, int]] = SPANS,
) -> list[Query]:
    """`n` ranges per span at orgs `pick_org` chooses and random positions inside [lo, hi],
    shuffled together."""
    out = []
    for name, span in spans:
        for _ in range(n):
            start = rng.randint(lo, hi - span + 1)
            out.append(Query(name, pick_org(rng), start, start + span - 1))
    rng.shuffle(out)
    return out


def make_queries(rng: random.Random, orgs: Sequence[str], lo: int, hi: int, n: int) -> list[Query]:
    """`n` ranges per span at random orgs and positions inside [lo, hi], shuffled together."""
    return random_queries(rng, lambda r: r.choice(orgs), lo, hi, n)


def api_call(client: HttpClient) -> Callable[[Query], int]:
    """POST one range; the record_count, failing on any status but 200/201."""

    def call(q: Query) -> int:
        status, body = client.post(PATH, q.body())
        if status not in (200, 201):
            raise RuntimeError(f"POST {q} answered {status}: {body[:300]!r}")
        return int(json.loads(body)["record_count"])

    return call


def pg_call(conn: Any) -> Callable[[Query], int]:
    """COUNT(*) of one range in PostgreSQL (prepared; whole-second events, inclusive end)."""
    cur = conn.cursor()

    def call(q: Query) -> int:
        start, end = EPOCH + timedelta(seconds=q.start), EPOCH + timedelta(seconds=q.end)
        cur.execute(SQL, (q.org, start, end + SECOND_SLACK), prepare=True)
        return int(cur.fetchone()[0])

    return call


def check(label: str, queries: Sequence[Query], got: Sequence[int], want: Sequence[int]) -> None:
    """Fail loudly when any count differs."""
    bad = [(q, g, w) for q, g, w in zip(queries, got, want, strict=True) if g != w]
    if bad:
        lines = "\n".join(f"  {q}: {label} {g}, expected {w}" for q, g, w in bad[:10])
        raise SystemExit(f"COUNT MISMATCH: {len(bad)} of {len(queries)} ranges\n{lines}")
