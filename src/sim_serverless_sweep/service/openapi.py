"""OpenAPI 3.1 document of the HTTP API, built from the request JSON Schema and the
response models, so it describes exactly what the app parses and answers.

Regenerate the committed copy with::

    python -m sim_serverless_sweep.service.openapi > docs/openapi.json
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from sim_serverless_sweep import __version__
from sim_serverless_sweep.core.contract import (
    MAX_BODY_BYTES,
    RUN_ID_PATTERN,
    request_json_schema,
)
from sim_serverless_sweep.service.app import JSON, ROUTE, RUN_ID_RULE
from sim_serverless_sweep.service.models import (
    ERROR_CODES,
    DispatchFailed,
    InternalError,
    Problem,
    RunAccepted,
    RunStatusBody,
    StorageUnavailable,
)

REGENERATE = "python -m sim_serverless_sweep.service.openapi > docs/openapi.json"
_MODELS: tuple[type[BaseModel], ...] = (
    Problem,
    DispatchFailed,
    InternalError,
    RunAccepted,
    RunStatusBody,
    StorageUnavailable,
)
_REF = "#/components/schemas/{model}"
# The README's demo request (examples/demo-run-001.json): 8 points in 4 shards.
EXAMPLE_REQUEST: dict[str, Any] = {
    "run_id": "demo-run-001",
    "dimensions": {
        "commission_rate": [0.1, 0.2],
        "num_drivers": [100, 200],
        "num_riders": [500, 800],
    },
    "shard_count": 4,
    "seed": 42,
    "failure_injection_shards": [1],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _internal() -> dict[str, Any]:
    return _body(
        _ref("InternalError"),
        "Anything unexpected: the message names the error's type and the request id only; "
        "the details are in the server's log.",
    )


def _problem(status: HTTPStatus, description: str) -> dict[str, Any]:
    # The shared Problem shape, with this status's one error code pinned.
    schema = {"allOf": [_ref("Problem")], "properties": {"error": {"const": ERROR_CODES[status]}}}
    return _body(schema, description)


def _schemas() -> dict[str, Any]:
    _, defs = models_json_schema([(m, "serialization") for m in _MODELS], ref_template=_REF)
    schemas: dict[str, Any] = dict(defs["$defs"])
    request = request_json_schema()
    request.pop("$schema", None)  # OpenAPI 3.1 schemas are 2020-12 already (the default dialect)
    schemas["SweepRequest"] = request
    return dict(sorted(schemas.items()))


_SERVE_ONLY = " (`sweep serve` only; API Gateway answers these itself)"
_STORAGE = (
    "`storage_unavailable`: the results storage failed (read-only, full, no permission); "
    "the message names the condition, never a server path."
)


def _post_sweep_run() -> dict[str, Any]:
    return {
        "operationId": "submitSweepRun",
        "summary": "Submit a sweep run, or resubmit an identical one to resume it",
        "description": (
            "Validates the request, records the run's manifest (conditional create), then "
            "enqueues one message per shard without a success outcome. A rejected request "
            "(400, 409, 411, 413, 415) writes nothing and enqueues nothing. `text/plain` and "
            "`application/x-www-form-urlencoded` bodies (curl's `-d` default) are parsed as "
            "JSON too."
        ),
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": _ref("SweepRequest"), "example": EXAMPLE_REQUEST}},
        },
        "responses": {
            "200": _body(
                _ref("RunAccepted"),
                "Identical resubmit and every shard already succeeded: nothing dispatched.",
            ),
            "202": _body(
                _ref("RunAccepted"),
                "New run, or identical resubmit with shards still to run: those are queued.",
            ),
            "400": _problem(
                HTTPStatus.BAD_REQUEST,
                "The request breaks the contract: every problem, each naming its field. A "
                "body that is not JSON, invalid base64 and a bad Content-Length"
                f"{_SERVE_ONLY} name `request` / `content-length`.",
            ),
            "409": _problem(
                HTTPStatus.CONFLICT,
                "`run_id` exists with a different request; the rule names the fields that differ.",
            ),
            "411": _problem(HTTPStatus.LENGTH_REQUIRED, f"Chunked body{_SERVE_ONLY}."),
            "413": _problem(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"Body over {MAX_BODY_BYTES} bytes, checked before parsing.",
            ),
            "415": _problem(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "Content-Type that is not JSON (`application/json`, `*+json`, `text/plain`, "
                "`application/x-www-form-urlencoded`).",
            ),
            "500": _internal(),
            "503": _body(
                {"oneOf": [_ref("DispatchFailed"), _ref("StorageUnavailable")]},
                "`dispatch_failed`: some shard messages could not be enqueued (the queue "
                "refused them, `sweep serve` is stopping, or another live runner holds the "
                "run); the run is recorded: resubmit the identical request to dispatch the "
                f"missing shards. {_STORAGE}",
            ),
        },
    }


def _get_sweep_run() -> dict[str, Any]:
    return {
        "operationId": "getSweepRun",
        "summary": "A run's progress",
        "parameters": [
            {
                "name": "run_id",
                "in": "path",
                "required": True,
                "description": f"The run's id: {RUN_ID_RULE}.",
                "schema": {"type": "string", "pattern": RUN_ID_PATTERN},
                "example": EXAMPLE_REQUEST["run_id"],
            }
        ],
        "responses": {
            "200": _body(_ref("RunStatusBody"), "The run's manifest summary and shard counts."),
            "400": _problem(HTTPStatus.BAD_REQUEST, "A run_id that cannot be a run id."),
            "404": _problem(HTTPStatus.NOT_FOUND, "No run has this run_id."),
            "500": _internal(),
            "503": _body(_ref("StorageUnavailable"), _STORAGE),
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of POST /sweep-run and GET /sweep-run/{run_id}."""
    other = (
        " Any other path is a 404 and another method on these paths a 405 with an `Allow` "
        "header, both with the Problem body."
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sim-serverless-sweep",
            "version": __version__,
            "description": (
                "Parameter sweeps of a ride-hailing marketplace simulation: submit a grid, "
                "poll its progress. Served by AWS Lambda behind API Gateway (IAM-authorised "
                "routes) and locally by `sweep serve`. Every error body is a Problem: "
                "`error`, `message` and field-named `problems`." + other
            ),
        },
        "paths": {
            ROUTE: {"post": _post_sweep_run()},
            ROUTE + "/{run_id}": {"get": _get_sweep_run()},
        },
        "components": {
            "schemas": _schemas(),
            "responses": {
                "NotFound": _problem(HTTPStatus.NOT_FOUND, "No such route."),
                "MethodNotAllowed": {
                    **_problem(HTTPStatus.METHOD_NOT_ALLOWED, "Known path, other method."),
                    "headers": {
                        "Allow": {
                            "description": "The method this path serves.",
                            "schema": {"type": "string", "enum": ["GET", "POST"]},
                        }
                    },
                },
            },
        },
    }


def document_text() -> str:
    """The document as the committed docs/openapi.json holds it."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(document_text())
