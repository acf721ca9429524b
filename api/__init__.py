"""The Period Record Count API: a Flask app factory."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask

from api import errors, metrics, middleware, ops, series, stream, views
from api.openapi import Api
from api.service import EXTENSION, Components, CountService
from api.snapshots import SnapshotStore
from config import Settings
from events.logs import configure_logging
from events.preflight import RedisUnavailable, check_redis
from events.redis_client import connect
from projector.live import LiveCounters, LiveGeneration
from projector.registry import GenerationRegistry

# A Redis outage must turn into a quick 503, not a request hanging on reconnect backoff.
REDIS_TIMEOUT_SECONDS = 2.0
REDIS_HEALTH_CHECK_SECONDS = 30
REDIS_MAX_CONNECTIONS = 64


def create_app(
    settings: Settings | None = None, *, redis_client: redis.Redis | None = None
) -> Flask:
    """Build the API app from `settings` (default: the environment)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        API_TITLE="Period Record Count Service",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the contract's key order
    register_logging(settings)
    register_extensions(app, settings, redis_client)
    register_blueprints(app)
    register_errorhandlers(app)
    return app


def connect_redis(settings: Settings) -> Any:
    """A Redis (or Redis Cluster) client that fails fast (2 s), so an outage is a quick 503."""
    # Under gevent every in-flight request is a greenlet holding its own connection: bound
    # the pool so a burst queues (up to the timeout, then 503) instead of opening thousands.
    # A connection the server dropped is retried once, at once; a timeout is not retried.
    return connect(
        settings,
        timeout=REDIS_TIMEOUT_SECONDS,
        max_connections=REDIS_MAX_CONNECTIONS,
        retries=1,
        health_check_interval=REDIS_HEALTH_CHECK_SECONDS,
    )


def check_connections(app: Flask) -> None:
    """Raise Rejected when Redis refuses the app's settings (password, ACL, TLS, protocol).

    An unreachable Redis is not fatal: the API serves 503s until it is back."""
    components: Components = app.extensions[EXTENSION]
    try:
        check_redis(components.settings, components.redis)
    except RedisUnavailable as exc:
        logging.getLogger("api").warning(
            "redis not reachable yet; answering 503 until it is", extra={"error": str(exc)}
        )


def register_logging(settings: Settings) -> None:
    """JSON log lines, unless the host process (gunicorn's config, pytest) already set up logs."""
    if not logging.getLogger().handlers:
        configure_logging(settings.log_level)


def register_extensions(app: Flask, settings: Settings, redis_client: redis.Redis | None) -> None:
    """One Redis client, the stores and the service for this app; the OpenAPI machinery."""
    client = redis_client if redis_client is not None else connect_redis(settings)
    prefix = settings.redis_key_prefix
    # One idea of the live generation per process, shared with the streams (api/stream.py).
    live = LiveGeneration(client, prefix)
    counters = LiveCounters(client, prefix, settings.record_events_topic, live)
    snapshots = SnapshotStore(client, counters)
    registry = GenerationRegistry(client, prefix, settings.dedup_window_seconds)
    service = CountService(counters, snapshots, registry, settings.count_grace_seconds)
    app.extensions[EXTENSION] = Components(settings, client, counters, snapshots, service)
    app.extensions["rest-api"] = Api(app)
    # Timing first: a request the guard turns away is still measured.
    metrics.init_app(app)
    middleware.init_app(app, settings)


def register_blueprints(app: Flask) -> None:
    """The resource and operational endpoints, documented in the OpenAPI doc."""
    api: Api = app.extensions["rest-api"]
    api.register_blueprint(views.blp)
    api.register_blueprint(series.blp)
    api.register_blueprint(ops.blp)
    # The live stream (GET {BASE_PATH}/stream; a static path, so it wins over `/<snapshot_id>`)
    # and the page at `/`.
    stream.init_app(app)


def register_errorhandlers(app: Flask) -> None:
    """Every error, from routing to Redis outages, as problem+json."""
    errors.init_app(app)
