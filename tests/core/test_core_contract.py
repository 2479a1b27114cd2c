"""Request contract: the spec's example parses; every bad request names field and rule."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from sim_serverless_sweep.core.contract import (
    Limits,
    RequestError,
    parse_request,
    request_json_schema,
)

GOOD: dict[str, Any] = {
    "run_id": "r-1",
    "dimensions": {"commission_rate": [0.1, 0.2], "num_drivers": [100, 200]},
    "shard_count": 2,
    "seed": 7,
}


def variant(**changes: Any) -> dict[str, Any]:
    """GOOD with fields replaced; a value of ... removes the field."""
    body: dict[str, Any] = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def dims(**values: Any) -> dict[str, Any]:
    return variant(dimensions=values)


# (case id, request body (dict or raw text), field named in the error, words in the rule)
BAD_REQUESTS: list[tuple[str, Any, str, str]] = [
    ("not-json", "{not json", "request", "not valid JSON"),
    ("json-array", "[1, 2]", "request", "JSON object"),
    ("json-string", '"hello"', "request", "JSON object"),
    (
        "nan-literal",
        '{"run_id": "x", "dimensions": {"commission_rate": [NaN]}, "shard_count": 1, "seed": 1}',
        "request",
        "NaN",
    ),
    (
        "infinity-literal",
        '{"run_id": "x", "dimensions": {"num_riders": [Infinity]}, "shard_count": 1, "seed": 1}',
        "request",
        "Infinity",
    ),
    (
        "duplicate-key",
        '{"run_id": "x", "dimensions": {"num_drivers": [1]}, "shard_count": 1, "seed": 1, '
        '"seed": 2}',
        "seed",
        "duplicate key 'seed'",
    ),
    (
        "duplicate-parameter",
        '{"run_id": "x", "dimensions": {"num_drivers": [1], "num_drivers": [2]}, '
        '"shard_count": 1, "seed": 1}',
        "num_drivers",
        "duplicate key 'num_drivers'",
    ),
    ("missing-run-id", variant(run_id=...), "run_id", "required"),
    ("missing-dimensions", variant(dimensions=...), "dimensions", "required"),
    ("missing-seed", variant(seed=...), "seed", "required"),
    ("neither-sharding", variant(shard_count=...), "shard_count", "exactly one"),
    ("both-sharding", variant(shard_size=1), "shard_size", "not both"),
    ("typo-field", variant(shard_sise=3), "shard_sise", "unknown field"),
    ("typo-field-hint", variant(shard_sise=3), "shard_sise", "did you mean 'shard_size'?"),
    ("typo-seed-hint", variant(sed=3), "sed", "did you mean 'seed'?"),
    ("extra-field", variant(priority="high"), "priority", "unknown field"),
    ("run-id-slash", variant(run_id="a/b"), "run_id", "must be 1-128 characters"),
    ("run-id-dotdot", variant(run_id=".."), "run_id", "must not start"),
    ("run-id-leading-dot", variant(run_id=".hidden"), "run_id", "must not start"),
    ("run-id-leading-dash", variant(run_id="-rf"), "run_id", "must not start"),
    ("run-id-equals", variant(run_id="run_id=x"), "run_id", "must be 1-128"),
    ("run-id-space", variant(run_id="a b"), "run_id", "must be 1-128"),
    ("run-id-empty", variant(run_id=""), "run_id", "must be 1-128"),
    ("run-id-too-long", variant(run_id="a" * 129), "run_id", "must be 1-128"),
    ("run-id-unicode", variant(run_id="runé"), "run_id", "must be 1-128"),
    ("run-id-number", variant(run_id=5), "run_id", "string"),
    ("seed-string", variant(seed="42"), "seed", "integer"),
    ("seed-float", variant(seed=4.0), "seed", "integer"),
    ("seed-bool", variant(seed=True), "seed", "integer"),
    ("seed-negative", variant(seed=-1), "seed", "0 <= seed < 2^63"),
    ("seed-too-big", variant(seed=2**63), "seed", "0 <= seed < 2^63"),
    ("shard-count-string", variant(shard_count="4"), "shard_count", "integer"),
    ("shard-count-bool", variant(shard_count=True), "shard_count", "integer"),
    ("shard-count-float", variant(shard_count=10.5), "shard_count", "integer"),
    ("shard-count-zero", variant(shard_count=0), "shard_count", ">= 1"),
    ("shard-count-negative", variant(shard_count=-2), "shard_count", ">= 1"),
    ("shard-count-over-points", variant(shard_count=5), "shard_count", "number of points"),
    ("shard-size-zero", variant(shard_count=..., shard_size=0), "shard_size", ">= 1"),
    ("shard-size-string", variant(shard_count=..., shard_size="2"), "shard_size", "integer"),
    ("dimensions-list", variant(dimensions=[1, 2]), "dimensions", "object"),
    ("dimensions-empty", variant(dimensions={}), "dimensions", "at least one"),
    (
        "dimension-unknown",
        dims(commision_rate=[0.1]),
        "dimensions.commision_rate",
        "unknown simulation parameter",
    ),
    (
        "dimension-unknown-hint",
        dims(commision_rate=[0.1]),
        "dimensions.commision_rate",
        "did you mean 'commission_rate'?",
    ),
    ("dimension-not-list", dims(num_drivers=100), "dimensions.num_drivers", "list"),
    ("dimension-empty-list", dims(num_drivers=[]), "dimensions.num_drivers", "non-empty"),
    ("int-param-string", dims(num_drivers=["100"]), "dimensions.num_drivers[0]", "not a number"),
    ("int-param-bool", dims(num_drivers=[True]), "dimensions.num_drivers[0]", "not a number"),
    ("int-param-decimal", dims(num_drivers=[10.5]), "dimensions.num_drivers[0]", "not an integer"),
    (
        "int-param-float-whole",
        dims(num_drivers=[100.0]),
        "dimensions.num_drivers[0]",
        "not an integer",
    ),
    ("int-param-below", dims(num_drivers=[0]), "dimensions.num_drivers[0]", "allowed range"),
    ("int-param-above", dims(num_riders=[10**9]), "dimensions.num_riders[0]", "allowed range"),
    (
        "float-param-string",
        dims(commission_rate=["0.1"]),
        "dimensions.commission_rate[0]",
        "not a number",
    ),
    (
        "float-param-null",
        dims(commission_rate=[None]),
        "dimensions.commission_rate[0]",
        "not a number",
    ),
    (
        "float-param-above",
        dims(commission_rate=[1.5]),
        "dimensions.commission_rate[0]",
        "allowed range",
    ),
    (
        "float-param-negative",
        dims(commission_rate=[-0.1]),
        "dimensions.commission_rate[0]",
        "allowed range",
    ),
    ("duplicate-values", dims(num_drivers=[100, 100]), "dimensions.num_drivers[1]", "duplicate"),
    (
        "duplicate-int-float",
        dims(commission_rate=[0, 0.0]),
        "dimensions.commission_rate[1]",
        "duplicate",
    ),
    ("nested-list", dims(num_drivers=[[100]]), "dimensions.num_drivers[0]", "not a number"),
    (
        "warmup-after-horizon",
        dims(warmup_min=[200], horizon_min=[100]),
        "dimensions.warmup_min",
        "below every horizon_min",
    ),
    (
        "injection-out-of-range",
        variant(failure_injection_shards=[2]),
        "failure_injection_shards[0]",
        "shard id in [0, 1]",
    ),
    (
        "injection-negative",
        variant(failure_injection_shards=[-1]),
        "failure_injection_shards[0]",
        "shard id",
    ),
    (
        "injection-duplicate",
        variant(failure_injection_shards=[1, 1]),
        "failure_injection_shards[1]",
        "duplicate",
    ),
    (
        "injection-string",
        variant(failure_injection_shards=["1"]),
        "failure_injection_shards[0]",
        "integer",
    ),
    ("injection-not-list", variant(failure_injection_shards=1), "failure_injection_shards", "list"),
    ("replications-zero", variant(replications=0), "replications", "1 to"),
    ("replications-float", variant(replications=2.0), "replications", "integer"),
    (
        "too-many-points",
        dims(num_drivers=list(range(1, 401)), num_riders=list(range(1, 401))),
        "dimensions",
        "MAX_POINTS",
    ),
    (
        "too-many-simulations",
        variant(dimensions={"num_riders": list(range(1, 201))}, replications=1_000),
        "replications",
        "MAX_POINTS",
    ),
    (
        "too-many-shards",
        variant(dimensions={"num_riders": list(range(1, 1500))}, shard_count=1200),
        "shard_count",
        "MAX_SHARDS",
    ),
    (
        "shard-size-too-small",
        variant(dimensions={"num_riders": list(range(1, 1500))}, shard_count=..., shard_size=1),
        "shard_size",
        "MAX_SHARDS",
    ),
    ("deeply-nested-json", "[" * 30_000, "request", "not valid JSON"),
    (
        "huge-integer-for-float",
        dims(commission_rate=[10**400]),
        "dimensions.commission_rate[0]",
        "allowed range",
    ),
    (
        "demand-over-model-limit",
        dims(num_riders=[200_000], request_rate_per_hour=[10.0], horizon_min=[600]),
        "dimensions.num_riders",
        "allows at most 5,000,000",
    ),
    (
        # 640,000 requests at most without the peak; the peak hour can hold 11x the rate.
        "demand-peak-over-model-limit",
        dims(num_riders=[200_000], morning_peak_amplitude=[0.0, 10.0]),
        "dimensions.num_riders",
        "time-of-day peaks",
    ),
    ("body-too-large", variant(run_id="x", note="y" * 70_000), "request", "limit"),
]


def _body(raw: Any) -> bytes:
    return raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("case", "raw", "field", "rule"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_request_names_field_and_rule(case: str, raw: Any, field: str, rule: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(_body(raw))
    messages = {p.field: p.message() for p in caught.value.problems}
    assert field in messages, f"{case}: expected a problem on {field}, got {messages}"
    assert rule in messages[field], f"{case}: {messages[field]!r} lacks {rule!r}"
    detail = caught.value.to_dict()
    assert detail["problems"] and all(p["field"] and p["rule"] for p in detail["problems"])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-32-be"])
def test_only_utf8_bodies_are_accepted(encoding: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(json.dumps(variant()).encode(encoding))
    (problem,) = caught.value.problems
    assert (problem.field == "request" and "UTF-8" in problem.rule) or "JSON" in problem.rule


def test_a_utf8_bom_is_tolerated() -> None:
    body = json.dumps(variant()).encode()
    assert parse_request(b"\xef\xbb\xbf" + body) == parse_request(body)


def test_negative_zero_is_the_same_request_as_zero() -> None:
    zero = parse_request(_body(variant(dimensions={"commission_rate": [0.0, 0.1]})))
    negative = parse_request(_body(variant(dimensions={"commission_rate": [-0.0, 0.1]})))
    assert negative.canonical_json() == zero.canonical_json()
    assert math.copysign(1, negative.dimensions["commission_rate"][0]) == 1


def test_no_hint_for_names_nothing_like_a_field() -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(_body(variant(priority="high", dimensions={"zzzz": [1]})))
    assert all("did you mean" not in p.message() for p in caught.value.problems)


def test_enough_bad_request_cases() -> None:
    assert len(BAD_REQUESTS) >= 40


def test_spec_example_parses(demo_request_body: bytes) -> None:
    request = parse_request(demo_request_body)
    assert request.run_id == "demo-run-001"
    assert request.points == 8
    assert request.shard_count == 4 and request.shard_size is None
    assert request.failure_injection_shards == [1]
    assert request.replications == 1


def test_all_problems_reported_at_once() -> None:
    raw = variant(
        run_id="../x", seed=-5, shard_sise=2, dimensions={"num_drivers": [0], "bogus": [1]}
    )
    with pytest.raises(RequestError) as caught:
        parse_request(_body(raw))
    fields = {p.field for p in caught.value.problems}
    assert {
        "run_id",
        "seed",
        "shard_sise",
        "dimensions.num_drivers[0]",
        "dimensions.bogus",
    } <= fields


def test_limits_come_from_environment() -> None:
    limits = Limits.from_env({"MAX_SHARDS": "1", "MAX_POINTS": "3"})
    with pytest.raises(RequestError) as caught:
        parse_request(_body(GOOD), limits)
    fields = {p.field for p in caught.value.problems}
    assert fields == {"shard_count", "dimensions"}


def test_float_params_accept_integers_and_normalise() -> None:
    request = parse_request(_body(dims(commission_rate=[0, 0.5], num_drivers=[10])))
    assert request.dimensions["commission_rate"] == [0.0, 0.5]
    assert all(isinstance(v, float) for v in request.dimensions["commission_rate"])
    again = parse_request(_body(dims(commission_rate=[0.0, 0.5], num_drivers=[10])))
    assert request.canonical_json() == again.canonical_json()


def test_json_schema_lists_every_parameter() -> None:
    schema = request_json_schema()
    assert schema["additionalProperties"] is False
    properties = schema["properties"]["dimensions"]["properties"]
    assert {"commission_rate", "num_drivers", "num_riders"} <= set(properties)
    assert properties["num_drivers"]["items"]["type"] == "integer"


def test_published_schema_is_current() -> None:
    published = Path(__file__).resolve().parents[2] / "docs" / "request.schema.json"
    assert json.loads(published.read_text()) == request_json_schema(), (
        "docs/request.schema.json is stale: run `.venv/bin/sweep schema > docs/request.schema.json`"
    )


@pytest.mark.parametrize(
    "sharding",
    [
        {"shard_count": None},
        {"shard_count": 2, "shard_size": None},
        {"shard_count": None, "shard_size": 2},
        {"shard_size": 2},
        {"shard_count": 2, "shard_size": 2},
    ],
)
def test_the_schema_and_the_parser_agree_on_sharding(sharding: dict[str, Any]) -> None:
    import jsonschema

    body = {**variant(shard_count=...), **sharding}
    schema_ok = jsonschema.Draft202012Validator(request_json_schema()).is_valid(body)
    try:
        parse_request(_body(body))
        parser_ok = True
    except RequestError:
        parser_ok = False
    assert schema_ok == parser_ok
