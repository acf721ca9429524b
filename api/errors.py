"""The one error handler: every error leaves as an RFC 9457 problem (application/problem+json)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import redis
from flask import Flask, Response, current_app
from werkzeug.exceptions import HTTPException

from api.service import RangeConflict, ServiceError, SnapshotNotFound
from events.redis_client import UNAVAILABLE
from projector.layout import LayoutMismatch

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5
# Redis down, restarting, failing over, or refusing our ACL user (a deployment fault, not the
# client's): 503 + Retry-After.
REDIS_UNAVAILABLE = (*UNAVAILABLE, redis.exceptions.NoPermissionError)
_SERVICE_STATUS: dict[type[ServiceError], int] = {SnapshotNotFound: 404, RangeConflict: 409}
# webargs location -> (what the detail calls it, the field name of errors about the whole of it)
_LOCATIONS = {"json": ("request body", "body"), "query": ("query string", "query")}

log = logging.getLogger(__name__)


def problem(
    status: int,
    detail: str,
    *,
    errors: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = dict(errors)
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def _flatten(messages: Any, path: str, whole: str, out: dict[str, list[str]]) -> None:
    """Collect marshmallow's nested messages as {dotted.path: [messages]}."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            _flatten(value, name, whole, out)
    elif isinstance(messages, list | tuple):
        for message in messages:
            _flatten(message, path, whole, out)
    else:
        out.setdefault(path or whole, []).append(str(messages))


def _validation_problem(
    status: int, messages: Mapping[str, Any], headers: dict[str, str]
) -> Response:
    """400/422 from webargs' messages, which are keyed by location first."""
    errors: dict[str, list[str]] = {}
    places = []
    for location, location_messages in messages.items():
        place, whole = _LOCATIONS.get(location, (location, location))
        places.append(place)
        _flatten(location_messages, "", whole, errors)
    summary = "; ".join(
        f"{field}: {' '.join(texts).rstrip('.')}" for field, texts in errors.items()
    )
    return problem(
        status, f"Invalid {' and '.join(places)}: {summary}", errors=errors, headers=headers
    )


def _http_problem(exc: HTTPException) -> Response:
    """A werkzeug/webargs HTTP error as a problem, keeping headers such as Allow."""
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    data = getattr(exc, "data", None) or {}
    headers.update(data.get("headers") or {})
    if "messages" in data:
        return _validation_problem(status, data["messages"], headers)
    return problem(status, exc.description or HTTPStatus(status).phrase, headers=headers)


def handle_error(exc: Exception) -> Response:
    """Render any exception as a problem: 4xx as raised, 404/409 domain errors, 503, else 500."""
    if isinstance(exc, HTTPException):
        return _http_problem(exc)
    if isinstance(exc, ServiceError):
        status = next((code for cls, code in _SERVICE_STATUS.items() if isinstance(exc, cls)), 500)
        return problem(status, str(exc))
    if isinstance(exc, LayoutMismatch):
        log.error("projection not readable: %s", exc, extra={"error": type(exc).__name__})
        return problem(
            503,
            "The projection in Redis is written in a key layout this version does not read; "
            "the operators must build a new one (see the logs).",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, REDIS_UNAVAILABLE):
        log.warning("redis unavailable: %s", exc, extra={"error": type(exc).__name__})
        return problem(
            503,
            "The data store is unavailable; try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.exception("unhandled error")
    return problem(500, "The server hit an unexpected error; it has been logged.")


def init_app(app: Flask) -> None:
    """Route every exception to `handle_error`."""
    app.register_error_handler(Exception, handle_error)
