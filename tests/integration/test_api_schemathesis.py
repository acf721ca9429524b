"""schemathesis against the served OpenAPI document, with every check it has (`--checks all`).

Beyond "no 5xx, every response as documented", every check includes positive data acceptance
(every request the document allows is accepted) and negative data rejection (every request it
forbids is refused): the document states exactly what the server takes. The examples, coverage
and fuzzing phases run per operation; the stateful phase follows the document's links (create,
read, recount, delete).

The document is read from an app at import time (serving it needs no Redis); each test then
points the schema's WSGI target at an app on the real Redis with the test's own key prefix.
(`schemathesis.pytest.from_fixture` would be the direct way, but schemathesis 4.32 reads
`Function._nodeid`, which pytest 9.2 no longer has.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks

from api import create_app, intervals
from api.bounds import parse_bound
from config import Settings
from events.schema import format_utc
from scripts.harness import delete_matching

load_all_checks()
EVERY_CHECK = frozenset(CHECKS.get_all_names())
# Reported only for operations that declare security; /healthz and the reads do not.
ONLY_WHERE_SECURED = frozenset({"ignored_auth"})
RAN: set[str] = set()  # names of the checks that judged a response in the running test


class Target:
    """A WSGI app that forwards to whichever app the running test set."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)


TARGET = Target(create_app(replace(Settings.from_env({}), redis_url="redis://127.0.0.1:1/0")))
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", TARGET).exclude(
    path_regex=r"/stream$"
)


@schema.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    """Put a generated range's bounds in order: `start <= end` is beyond JSON Schema's reach (the
    document says it in words), so a schema-valid body may still break it."""
    window = body.get("range") if isinstance(body, dict) else None
    if not isinstance(window, dict):
        return body
    try:
        start = parse_bound(window.get("start"), "start")
        end = parse_bound(window.get("end"), "end")
    except ValueError:  # not two valid bounds: nothing to order, whatever the case tests
        return body
    if start <= end:
        return body
    return {**body, "range": {**window, "start": window["end"], "end": window["start"]}}


@schema.hook
def map_query(context: schemathesis.HookContext, query: Any) -> Any:
    """A series' query in order: `start <= end` and at most 1,000 buckets are beyond JSON
    Schema's reach (the document says them in words); so put the bounds in order and shorten
    the range until its buckets fit."""
    if not isinstance(query, dict) or not {"start", "end", "interval"} <= set(query):
        return query
    try:
        start = parse_bound(query["start"], "start")
        end = parse_bound(query["end"], "end")
        interval = intervals.Interval(query["interval"])
        tz = intervals.zone(query.get("tz", "UTC"))
    except (ValueError, KeyError, TypeError):  # a negative case: nothing to fix
        return query
    start, end = min(start, end), max(start, end)
    while True:
        try:
            intervals.series(tz, interval, start, end)
            break
        except intervals.TooManyBuckets:
            end = start + (end - start) // 2
    return {**query, "start": format_utc(start), "end": format_utc(end)}


@schema.hook
def after_validate(context: Any, case: Any, response: Any, results: Any) -> None:
    """Note which checks judged a response."""
    RAN.update(result.name for result in results)


@pytest.fixture(autouse=True)
def live_app(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    """An app on the real Redis with this test's key prefix, as the schema's target; afterwards,
    every check schemathesis has must have judged the responses of the test."""
    app, idle = create_app(settings), TARGET.app
    TARGET.app = app
    RAN.clear()
    yield app
    TARGET.app = idle
    app.extensions["period-record-counts"].redis.close()
    assert EVERY_CHECK - RAN <= ONLY_WHERE_SECURED, sorted(EVERY_CHECK - RAN)


def test_every_check_includes_the_data_checks() -> None:
    assert {"positive_data_acceptance", "negative_data_rejection"} < EVERY_CHECK
    RAN.update(EVERY_CHECK)  # this test calls nothing


@schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_document(case: schemathesis.Case) -> None:
    case.call_and_validate()  # no `checks=`: every check, as `--checks all` runs them


def test_api_workflows_conform_to_its_document(redis_client: redis.Redis, key_prefix: str) -> None:
    """Stateful runs along the document's links, every check (use-after-free included)."""

    class Workflows(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            """Each scenario starts with no snapshots, so a replayed one meets what it met."""
            delete_matching(redis_client, f"{key_prefix}:*")

    Workflows.run(
        settings=settings(
            max_examples=40,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
