"""The period-record-counts resource: counts and their snapshots."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView

from api.middleware import BASE_PATH
from api.openapi import OPTIONAL_BEARER, Blueprint
from api.schemas import (
    CountRequestSchema,
    CountResultSchema,
    DeletedSchema,
    ListQuerySchema,
    SnapshotPageSchema,
    SnapshotSchema,
    UpdateRequestSchema,
    count_result,
)
from api.service import current_service

blp = Blueprint(
    "period-record-counts",
    __name__,
    url_prefix=BASE_PATH,
    description="Exact record counts per org and time range, and snapshots of them.",
)
LOCATION = {"Location": {"description": "The snapshot's URL.", "schema": {"type": "string"}}}
ITEM_OPERATIONS = ("getCountSnapshot", "refreshCountSnapshot", "deleteCountSnapshot")


def snapshot_links(*statuses: int) -> dict[str, Any]:
    """OpenAPI links from these responses (their body's `id`) to the operations on the snapshot."""
    links = {
        operation: {"operationId": operation, "parameters": {"snapshot_id": "$response.body#/id"}}
        for operation in ITEM_OPERATIONS
    }
    return {status: {"links": links} for status in statuses}


def count_response(snapshot: Any, created: bool) -> Response:
    """The POST's answer: the documented CountResultSchema body, built without a marshmallow
    dump, 201 and the Location url_for(".SnapshotItem") would build when `created`, else 200.
    This is the hot path."""
    response = current_app.json.response(count_result(snapshot))
    if created:
        response.status_code = 201
        response.headers["Location"] = f"{request.script_root}{BASE_PATH}/{snapshot.id}"
    return response


@blp.route("")
class Collection(MethodView):
    """The collection: count (and snapshot) a range; list snapshots."""

    @blp.arguments(ListQuerySchema(), location="query", error_status_code=400)
    @blp.response(200, SnapshotPageSchema())
    @blp.errors(503)
    @blp.doc(operationId="listCountSnapshots")
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List snapshots, newest snapshot_at first; 400 on a bad query, 503 without Redis."""
        page = current_service().list_snapshots(
            query["page"], query["limit"], query.get("org_id"), query.get("is_complete")
        )
        return {
            "data": page.items,
            "pagination": {"page": query["page"], "limit": query["limit"], "total": page.total},
        }

    @blp.arguments(CountRequestSchema())
    @blp.response(
        201, CountResultSchema(), description="Counted; snapshot created.", headers=LOCATION
    )
    @blp.alt_response(
        200, schema=CountResultSchema(), description="Counted; snapshot refreshed.", success=True
    )
    @blp.errors(400, 401, 413, 415, 503)
    @blp.doc(
        operationId="countRecords", security=OPTIONAL_BEARER, responses=snapshot_links(201, 200)
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Count an org's records over a range now; 400/401/413/415/422, 503 without Redis."""
        window = body["range"]
        snapshot, created = current_service().count(body["org_id"], window["start"], window["end"])
        return count_response(snapshot, created)


@blp.route("/<snapshot_id:snapshot_id>")
class SnapshotItem(MethodView):
    """One snapshot."""

    @blp.response(200, SnapshotSchema())
    @blp.errors(404, 503)
    @blp.doc(operationId="getCountSnapshot", responses=snapshot_links(200))
    def get(self, snapshot_id: str) -> Any:
        """The snapshot; 404 unknown id, 503 without Redis."""
        return current_service().get(snapshot_id)

    @blp.arguments(UpdateRequestSchema())
    @blp.response(200, SnapshotSchema())
    @blp.errors(400, 401, 404, 409, 413, 415, 503)
    @blp.doc(
        operationId="refreshCountSnapshot", security=OPTIONAL_BEARER, responses=snapshot_links(200)
    )
    def put(self, body: dict[str, Any], snapshot_id: str) -> Any:
        """Recount the snapshot's org over a new range; 404, 409 range taken, 422, 503."""
        window = body["range"]
        return current_service().recount(snapshot_id, window["start"], window["end"])

    @blp.response(200, DeletedSchema())
    @blp.errors(401, 404, 503)
    @blp.doc(operationId="deleteCountSnapshot", security=OPTIONAL_BEARER)
    def delete(self, snapshot_id: str) -> dict[str, Any]:
        """Delete the snapshot; 401, 404 unknown id, 503 without Redis."""
        current_service().delete(snapshot_id)
        return {"deleted": True, "id": snapshot_id}
