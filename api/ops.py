"""Operational endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import dataclasses
import logging

from flask import Response
from flask.views import MethodView
from redis.exceptions import RedisError

from api import metrics
from api.errors import RETRY_AFTER_SECONDS, problem
from api.openapi import Blueprint
from api.schemas import HealthSchema, ReadySchema
from api.service import current_components, current_service
from events.preflight import redis_rejection
from projector import listpack

log = logging.getLogger(__name__)

blp = Blueprint("operations", __name__, description="Health, readiness and metrics.")


@blp.route("/healthz")
class Health(MethodView):
    """Liveness."""

    @blp.response(200, HealthSchema)
    @blp.doc(operationId="health")
    def get(self) -> dict[str, str]:
        """The process answers; touches nothing else."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    """Readiness."""

    @blp.response(200, ReadySchema)
    @blp.errors(503)
    @blp.doc(operationId="readiness")
    def get(self) -> dict[str, object] | Response:
        """Redis answers; reports how far the projection has got, the live generation, a
        rebuild's progress and whether Redis keeps the hashes compact; 503 without Redis.

        When Redis refuses the service (credentials, ACL, TLS) the 503 says so."""
        try:
            ready = current_service().readiness()
            compact = listpack.read(current_components().redis)
        except RedisError as exc:
            reason = redis_rejection(exc)
            if reason is None:
                raise  # unreachable: the one handler's 503
            log.warning("redis refuses the service", extra={"reason": reason})
            return problem(
                503,
                f"Redis refuses the service: it {reason}.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return {
            "status": "ready",
            "caught_up_at": ready.caught_up_at,
            "lag_seconds": ready.lag_seconds,
            "generation": ready.generation,
            "rebuild": None if ready.rebuild is None else dataclasses.asdict(ready.rebuild),
            "listpack": {
                "ok": compact.ok,
                "config": dict(compact.config),
                "needed": dict(compact.needed),
            },
        }


@blp.route("/metrics")
class Metrics(MethodView):
    """Prometheus metrics."""

    @blp.response(
        200,
        {"type": "string"},
        content_type="text/plain",
        description="Prometheus text exposition format.",
    )
    @blp.doc(operationId="metrics")
    def get(self) -> Response:
        """Request latency by route and status, in Prometheus text format."""
        return metrics.exposition(current_components().settings.prometheus_multiproc_dir)
