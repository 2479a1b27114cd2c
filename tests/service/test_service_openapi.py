"""The OpenAPI document: valid 3.1, fresh on disk, every route's statuses, models that match
what the use cases return."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError

from sim_serverless_sweep import __version__
from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.messages import RunManifest
from sim_serverless_sweep.runtime.status import RunStatus
from sim_serverless_sweep.service.models import RunStatusBody
from sim_serverless_sweep.service.openapi import (
    EXAMPLE_REQUEST,
    REGENERATE,
    document_text,
    openapi_document,
)

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == __version__


def test_committed_copy_is_fresh() -> None:
    assert COMMITTED.read_text() == document_text(), f"docs/openapi.json is stale; run {REGENERATE}"


def test_every_status_of_each_route_is_documented_as_json() -> None:
    paths = openapi_document()["paths"]
    post = paths["/sweep-run"]["post"]["responses"]
    get = paths["/sweep-run/{run_id}"]["get"]["responses"]
    assert set(post) == {"200", "202", "400", "409", "411", "413", "415", "500", "503"}
    assert set(get) == {"200", "400", "404", "500", "503"}
    for response in [*post.values(), *get.values()]:
        assert set(response["content"]) == {"application/json"}


def test_request_body_is_the_contracts_json_schema() -> None:
    document = openapi_document()
    body = document["paths"]["/sweep-run"]["post"]["requestBody"]
    assert body["required"] is True
    schema = document["components"]["schemas"]["SweepRequest"]
    assert schema["required"] == ["run_id", "dimensions", "seed"]
    assert "num_drivers" in schema["properties"]["dimensions"]["properties"]


def test_the_documented_example_is_the_demo_request(demo_request_body: bytes) -> None:
    assert json.loads(demo_request_body) == EXAMPLE_REQUEST
    assert parse_request(json.dumps(EXAMPLE_REQUEST)).points == 8


def _status() -> RunStatus:
    request = parse_request(
        json.dumps(
            {
                "run_id": "status-run",
                "dimensions": {"num_drivers": [10, 20, 30]},
                "shard_count": 3,
                "seed": 1,
            }
        )
    )
    accepted_at = dt.datetime(2026, 1, 2, 23, 59, tzinfo=dt.UTC)
    manifest = RunManifest.create(request, accepted_at, __version__)
    return RunStatus(manifest, succeeded=[0], failed=[1], pending=[2])


def test_run_status_to_dict_fits_the_model_exactly() -> None:
    raw = _status().to_dict()
    body = RunStatusBody.model_validate(raw)  # extra="forbid": no key may be undocumented
    assert body.model_dump(mode="json") == raw
    with pytest.raises(ValidationError, match="extra"):
        RunStatusBody.model_validate({**raw, "undocumented": 1})
    with pytest.raises(ValidationError, match="state"):
        RunStatusBody.model_validate({k: v for k, v in raw.items() if k != "state"})
