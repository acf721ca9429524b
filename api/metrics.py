"""Request metrics (Prometheus) and one structured access-log line per request."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_SECONDS = Histogram(
    "prc_api_request_duration_seconds",
    "API request latency by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
UNMATCHED = "<unmatched>"

access_log = logging.getLogger("api.access")


def _start() -> None:
    g.request_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("request_started", None)
    if started is None:
        return response
    seconds = time.perf_counter() - started
    # The route template, never the raw path: unknown paths must not mint new series.
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    REQUEST_SECONDS.labels(route, request.method, str(response.status_code)).observe(seconds)
    if not access_log.isEnabledFor(logging.INFO):  # e.g. LOG_LEVEL=WARNING: skip building it
        return response
    access_log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 3),
            "remote_addr": request.remote_addr,
        },
    )
    return response


def exposition(multiproc_dir: str | None) -> Response:
    """The metrics page; under gunicorn it sums the metrics of every worker."""
    registry = REGISTRY
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def init_app(app: Flask) -> None:
    """Time every request and log it."""
    app.before_request(_start)
    app.after_request(_observe)
