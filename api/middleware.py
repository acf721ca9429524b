"""Request guards and response decoration: path alias, bearer token, body limits, CORS."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response, request
from webargs.core import is_json
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import RequestEntityTooLarge, Unauthorized, UnsupportedMediaType

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from config import Settings

BASE_PATH = "/api/v1/period-record-counts"
MAX_BODY_BYTES = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT"})
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Last-Event-ID"
CORS_EXPOSE = "Location, Retry-After, WWW-Authenticate"
CORS_MAX_AGE = "600"
BODY_READ = "prc.body_read"  # set in the WSGI environ once the whole body has been read


def canonical_path(path: str) -> str:
    """The contract's doubled base path and a trailing slash under the base, made canonical."""
    doubled = BASE_PATH + BASE_PATH
    if path == doubled or path.startswith(doubled + "/"):
        path = path[len(BASE_PATH) :]
    if path.startswith(BASE_PATH + "/") and path.endswith("/"):
        path = path[:-1]
    return path


class PathAlias:
    """WSGI middleware: routes see canonical paths, so aliases stay out of the OpenAPI doc."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["PATH_INFO"] = canonical_path(environ.get("PATH_INFO", ""))
        return self.app(environ, start_response)


class CloseUnreadBody:
    """WSGI middleware: an error answered without reading a large (over 64 KiB) or chunked
    request body ends the connection.

    Otherwise gunicorn keeps the connection alive by reading the rest of that body first (all
    100 MiB of a refused 100 MiB upload). `force_close` is gunicorn's; elsewhere a no-op.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH", "")
        unbounded = (length.isdigit() and int(length) > MAX_BODY_BYTES) or (
            "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        )

        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            if unbounded and status[:1] in "45" and not environ.get(BODY_READ):
                server_response = getattr(start_response, "__self__", None)
                force_close = getattr(server_response, "force_close", None)
                if callable(force_close):
                    force_close()
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def _token_ok(header: str | None, token: str) -> bool:
    scheme, _, credentials = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )


def guard(token: str | None) -> Any:
    """A before_request hook: 401 without the token, 413 over 64 KiB, 415 when not JSON."""

    def check() -> None:
        # A path or method the app does not route gets its 404/405, whatever else is wrong.
        if request.routing_exception is not None:
            return
        if (
            token
            and request.method in WRITE_METHODS
            and not _token_ok(request.headers.get("Authorization"), token)
        ):
            raise Unauthorized(
                "Send Authorization: Bearer <token> to change snapshots.",
                www_authenticate=WWWAuthenticate("Bearer", {"realm": "period-record-counts"}),
            )
        if request.method not in BODY_METHODS:
            return
        # Refuse by the declared length before reading; MAX_CONTENT_LENGTH caps chunked bodies.
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise RequestEntityTooLarge(f"The request body is over {MAX_BODY_BYTES} bytes.")
        if not is_json(request.mimetype):
            raise UnsupportedMediaType("Send the request body as Content-Type: application/json.")

    return check


def read_body(req: Request) -> bytes:
    """The request body; 413 when it is over 64 KiB, chunked (length-less) bodies included."""
    data = req.get_data(cache=True)
    # Werkzeug stops a length-less body at MAX_CONTENT_LENGTH without complaint: look past it.
    if (
        len(data) >= MAX_BODY_BYTES
        and req.content_length is None
        and req.environ["wsgi.input"].read(1)
    ):
        raise RequestEntityTooLarge(f"The request body is over {MAX_BODY_BYTES} bytes.")
    req.environ[BODY_READ] = True
    return data


def cors(origins: tuple[str, ...]) -> Any:
    """An after_request hook answering CORS for the configured origins only."""
    any_origin = "*" in origins

    def decorate(response: Response) -> Response:
        response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if not origin or not (any_origin or origin in origins):
            return response
        response.headers["Access-Control-Allow-Origin"] = "*" if any_origin else origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        return response

    return decorate


def init_app(app: Flask, settings: Settings) -> None:
    """Install the path alias, the request guard and (when configured) CORS."""
    app.wsgi_app = CloseUnreadBody(PathAlias(app.wsgi_app))  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.before_request(guard(settings.api_token))
    if settings.cors_origins:
        app.after_request(cors(settings.cors_origins))
