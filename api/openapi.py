"""flask-smorest, fitted to this API: problem+json errors in the doc, strict JSON bodies."""

from __future__ import annotations

import http
import json
from typing import Any

import flask_smorest
from flask import Flask, Request, Response
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from webargs.flaskparser import FlaskParser, abort

from api import errors
from api.middleware import read_body
from api.schemas import (
    EmptyMeansAbsentSchema,
    Instant,
    ProblemSchema,
    SnapshotIdConverter,
    snapshot_id_param_schema,
)

BEARER = "bearerAuth"
# Documents "no token needed unless API_TOKEN is set" in OpenAPI terms: bearer, or nothing.
OPTIONAL_BEARER = [{BEARER: []}, {}]
_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "The auth scheme: Bearer.",
            "schema": {"type": "string"},
        }
    },
    503: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}


def field_json_schema(converter: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: the JSON Schema keywords a field class states (`JSON_SCHEMA`)."""
    return dict(getattr(field, "JSON_SCHEMA", {}))


def allow_empty_value(converter: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """apispec parameter function: `allowEmptyValue` where the query schema reads "" as absent."""
    return {"allowEmptyValue": True} if isinstance(field.parent, EmptyMeansAbsentSchema) else {}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JsonBodyParser(FlaskParser):
    """webargs parser: a body must be UTF-8 JSON; anything else is a 400, never a 500."""

    def load_json(self, req: Request, schema: Schema) -> Any:
        """The decoded body; aborts 400 when it is empty, not UTF-8, or not JSON."""
        raw = read_body(req)
        if not raw.strip():
            abort(400, messages={"json": ["The request body is empty; send a JSON object."]})
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            abort(400, messages={"json": ["The request body is not UTF-8."]})
        except RecursionError:
            abort(400, messages={"json": ["The request body nests too deeply."]})
        except ValueError as exc:
            abort(400, messages={"json": [f"The request body is not valid JSON: {exc}."]})


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest Blueprint that parses bodies with JsonBodyParser."""

    ARGUMENTS_PARSER = JsonBodyParser()

    def errors(self, *statuses: int) -> Any:
        """Document these error responses (problem+json) on a view."""

        def decorator(func: Any) -> Any:
            for status in statuses:
                func = self.alt_response(status, response=http.HTTPStatus(status).name)(func)
            return func

        return decorator


class Api(flask_smorest.Api):
    """flask-smorest's Api with problem+json error responses and our field types."""

    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        """Set up the spec, then register our URL converter, field and security scheme."""
        app.url_map.converters["snapshot_id"] = SnapshotIdConverter
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.register_converter(SnapshotIdConverter, snapshot_id_param_schema)
        self.register_field(Instant, "string", "date-time")
        self.ma_plugin.converter.add_attribute_function(field_json_schema)
        self.ma_plugin.converter.add_parameter_attribute_function(allow_empty_value)
        self.spec.components.security_scheme(
            BEARER,
            {"type": "http", "scheme": "bearer", "description": "Needed when API_TOKEN is set."},
        )

    def _register_responses(self) -> None:
        """Lazily register a problem+json response for every error status, and the default."""
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response: dict[str, Any] = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
            if status in _HEADERS:
                response["headers"] = _HEADERS[status]
            prepare_response(response, self.spec, errors.PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Any other error", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, errors.PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def handle_http_exception(self, error: Exception) -> Response:
        """Render HTTP errors with the app's one error handler."""
        return errors.handle_error(error)
