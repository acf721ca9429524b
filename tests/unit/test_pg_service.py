"""The PostgreSQL baseline service (bench/pg_service.py) and the busy-org bench's plan
arithmetic (bench/busy_org.py, bench/world.py): the parts that need no database."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from bench import busy_org
from bench.pg_service import count_params, create_app
from bench.world import distinct_plan

PATH = "/api/v1/period-record-counts"
JAN_1_2026 = 1767225600


def test_count_params_cover_whole_seconds_inclusively() -> None:
    params = count_params("org-a", JAN_1_2026, JAN_1_2026 + 59, JAN_1_2026 + 60.5, "count-x")
    assert params["start"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert params["end"] == datetime(2026, 1, 1, 0, 0, 59, 999_999, tzinfo=UTC)
    assert (params["range_start"], params["range_end"]) == (JAN_1_2026, JAN_1_2026 + 59)
    assert params["at"] == JAN_1_2026 + 60
    assert params["id"] == "count-x" and params["org_id"] == "org-a"


@pytest.mark.parametrize(
    ("now", "complete"),
    [(JAN_1_2026 + 10.0, True), (JAN_1_2026 + 9.999, False), (JAN_1_2026 + 5, False)],
)
def test_complete_once_the_last_second_is_over(now: float, complete: bool) -> None:
    assert count_params("o", JAN_1_2026, JAN_1_2026 + 9, now, "i")["is_complete"] is complete


def test_bad_bodies_are_problems_before_any_database() -> None:
    client = create_app("host=127.0.0.1 port=1 dbname=none").test_client()  # never connected
    bad_json = client.post(PATH, data=b"{", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.mimetype == "application/problem+json"
    missing = client.post(PATH, json={"org_id": "org-a"})
    assert missing.status_code == 422
    assert missing.get_json()["errors"] == {"range": ["Missing data for required field."]}


def test_distinct_plan_has_the_distinct_events_asked() -> None:
    plan = distinct_plan(busy_org.QUIET_ORGS, 40_000, 0, 10**9, seed=3)
    assert plan.quotas[0] >= 40_000 and plan.quotas[0] - 40_000 <= 1
    assert 0 < plan.quotas[1] <= plan.count * 0.011


def test_busy_queries_fit_the_data_and_mostly_hit_the_busy_org() -> None:
    lo = JAN_1_2026
    hi = lo + int(busy_org.YEARS * 365.25 * busy_org.DAY)
    queries = busy_org.busy_queries(random.Random(7), lo, hi, 400)
    assert Counter(q.span for q in queries) == {name: 400 for name, _ in busy_org.SPANS}
    spans = dict(busy_org.SPANS)
    assert all(lo <= q.start and q.end <= hi for q in queries)
    assert all(q.end - q.start + 1 == spans[q.span] for q in queries)
    busy = sum(q.org == busy_org.BUSY_ORG for q in queries) / len(queries)
    assert abs(busy - busy_org.BUSY_SHARE) < 0.03
