"""Gunicorn settings for the API (`python -m api` loads this file by path).

gevent workers (server-sent events hold a connection each), JSON logs, and prometheus_client's
multiprocess mode so /metrics sums every worker. Loaded in the master only: keep it free of
Flask, redis and prometheus_client imports, which would pull in ssl before gevent patches it.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from typing import Any

from gunicorn.glogging import Logger

from events.settings import Settings

_settings = Settings.from_env()

bind = f"{_settings.bind_host}:{_settings.port}"
workers = _settings.web_concurrency
worker_class = "gevent"
# Every open stream holds a connection: room for SSE_MAX_STREAMS of them plus the REST calls.
worker_connections = _settings.sse_max_streams + 200
timeout = 30
# SIGTERM: stop accepting, let requests finish for this long, then stop the workers.
graceful_timeout = 10
keepalive = 5
accesslog = None  # the app logs one JSON line per request (logger "api.access")


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


def post_worker_init(worker: Any) -> None:
    """End the worker's live streams as soon as it is told to stop, not at graceful_timeout."""
    import gevent  # the worker is patched by now: these imports are safe here

    from api import fanout

    def close_streams_on_exit() -> None:
        while worker.alive:
            gevent.sleep(0.5)
        fanout.close_all()

    gevent.spawn(close_streams_on_exit)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live-gauge files (prometheus_client's mark_process_dead)."""
    for path in glob.glob(os.path.join(_metrics_dir, f"gauge_live*_{worker.pid}.db")):
        os.remove(path)


def on_exit(server: Any) -> None:
    """Remove the metrics folder this config made."""
    if _owns_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
