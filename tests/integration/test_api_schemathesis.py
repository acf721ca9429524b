"""schemathesis against the served OpenAPI document: no 5xx, every response as documented.

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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from events.settings import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


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


@pytest.fixture(autouse=True)
def live_app(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    """An app on the real Redis with this test's key prefix, as the schema's target."""
    app, idle = create_app(settings), TARGET.app
    TARGET.app = app
    yield app
    TARGET.app = idle
    app.extensions["period-record-counts"].redis.close()


@schema.parametrize()
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_document(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
