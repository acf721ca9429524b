"""Gunicorn settings for the API (`python -m api` loads this file by path).

gevent workers (server-sent events hold a connection each) that answer gunicorn's own refusals
as problem+json, JSON logs, and prometheus_client's multiprocess mode so /metrics sums every
worker. Loaded in the master only: keep it free of Flask, redis and prometheus_client imports,
which would pull in ssl before gevent patches it (so the worker below is here, not in `api`).
"""

from __future__ import annotations

import gc
import glob
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http.errors import (
    ConfigurationProblem,
    ForbiddenProxyRequest,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.ggevent import GeventWorker

from config import Settings
from events.logs import exit_if_rejected

with exit_if_rejected(logging.getLogger("api")):
    _settings = Settings.from_env()

bind = f"{_settings.bind_host}:{_settings.port}"
workers = _settings.web_concurrency
# Every open stream holds a connection: room for SSE_MAX_STREAMS of them plus the REST calls.
worker_connections = _settings.sse_max_streams + 200
timeout = 30
# SIGTERM: stop accepting, let requests finish for this long, then stop the workers.
graceful_timeout = 10
keepalive = 5
accesslog = None  # the app logs one JSON line per request (logger "api.access")
# What gunicorn refuses before the app sees a request (ProblemWorker answers): a request line
# over 4094 bytes is a 414, over 100 header fields or one over 8190 bytes a 431. The API's
# longest URIs (a stream query) are a few hundred bytes; browsers' headers a few KiB.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# After refusing a request, read what the client still sends for this long (or this much) before
# closing: closing a socket with unread input resets the connection, and a client still sending
# its oversized request then never reads the answer.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
PROBLEM_JSON = "application/problem+json"  # as api/errors.py renders every other error


def refusal(exc: BaseException) -> tuple[int, str]:
    """The status and detail of the problem that answers a request gunicorn could not take."""
    if isinstance(exc, LimitRequestLine):
        return 414, f"The request line is over {limit_request_line} bytes; shorten the URI."
    if isinstance(exc, LimitRequestHeaders):
        return 431, (
            f"The request's header fields are too large: at most {limit_request_fields} fields "
            f"of up to {limit_request_field_size} bytes each."
        )
    if isinstance(exc, UnsupportedTransferCoding):
        return 501, f"Transfer-Encoding {exc.hdr!r} is not supported; send chunked or sized bodies."
    if isinstance(exc, ForbiddenProxyRequest):
        return 403, "The PROXY protocol is not accepted from this address."
    if isinstance(exc, ConfigurationProblem):
        return 500, "The server is misconfigured; it has been logged."
    if isinstance(exc, ParseException):
        return 400, f"The request is not valid HTTP/1.1: {str(exc)[:200]}"
    return 500, "The server hit an unexpected error; it has been logged."


def problem_response(status: int, detail: str) -> bytes:
    """A whole HTTP/1.1 response carrying an RFC 9457 problem; the connection closes after it."""
    phrase = HTTPStatus(status).phrase
    body = json.dumps({"type": "about:blank", "title": phrase, "status": status, "detail": detail})
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nDate: {util.http_date()}\r\nConnection: close\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode("latin-1")


def linger(client: socket.socket) -> None:
    """Read and drop the client's input until it stops sending, LINGER_SECONDS or LINGER_BYTES."""
    client.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + LINGER_SECONDS
    received = 0
    while received < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
        client.settimeout(left)
        chunk = client.recv(65536)
        if not chunk:
            return
        received += len(chunk)


class ProblemWorker(GeventWorker):
    """gunicorn's gevent worker; what gunicorn itself refuses is answered as problem+json, too.

    gunicorn renders an unparseable request (line or headers too long, too many headers, not
    HTTP at all) as an HTML page before the app is reached; SPEC wants a problem everywhere.
    """

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Log the refusal, answer it with a problem, and close the connection cleanly."""
        status, detail = refusal(exc)
        address = addr[0] if addr else ""
        if status >= 500:
            self.log.exception("error handling request", extra={"status": status})
        else:
            self.log.warning(
                "refused request from %s: %s",
                address,
                exc,
                extra={"status": status, "remote_addr": address},
            )
        try:
            util.write_nonblock(client, problem_response(status, detail))
            linger(client)
        except OSError:  # the client went away: nothing to tell it
            self.log.debug("could not send the error response")


worker_class = ProblemWorker


class AppLogger(Logger):
    """gunicorn's logger without its access line (the app logs one, as "api.access").

    With a logconfig_dict set, gunicorn's `access` builds every atom of the line for each
    request even though "gunicorn.access" below drops it: ~3 % of a worker's time under load.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


logger_class = AppLogger
errorlog = "-"
loglevel = _settings.log_level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "events.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": _settings.log_level, "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": _settings.log_level, "handlers": [], "propagate": True},
        # Access lines come from the app (logger "api.access"), structured.
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
    },
}

# One metrics folder per server run, made here and removed on exit, unless one was given.
_metrics_dir = _settings.prometheus_multiproc_dir
_owns_metrics_dir = _metrics_dir is None
if _metrics_dir is None:
    _metrics_dir = tempfile.mkdtemp(prefix="prc-api-metrics-")
# prometheus_client reads this variable itself, in each worker, when it is imported.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def when_ready(server: Any) -> None:
    """Log, once for the server, the settings the API runs with (secrets masked)."""
    logging.getLogger("api").info("settings", extra={"settings": _settings.of("api")})


def post_worker_init(worker: Any) -> None:
    """Freeze what start-up allocated out of the collector's way, and end the worker's live
    streams as soon as it is told to stop, not at graceful_timeout."""
    import gevent  # the worker is patched by now: these imports are safe here

    from api import fanout

    def close_streams_on_exit() -> None:
        while worker.alive:
            gevent.sleep(0.5)
        fanout.close_all()

    gevent.spawn(close_streams_on_exit)
    # The app is loaded: its modules, schemas and OpenAPI spec (~73,000 objects) never die,
    # and each full collection would walk them again (~20-40 ms here, inside some request).
    # Frozen, a collection walks only what requests allocated since (docs/benchmarks.md).
    gc.collect()
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live-gauge files (prometheus_client's mark_process_dead)."""
    for path in glob.glob(os.path.join(_metrics_dir, f"gauge_live*_{worker.pid}.db")):
        os.remove(path)


def on_exit(server: Any) -> None:
    """Remove the metrics folder this config made."""
    if _owns_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
