"""The sweep request contract: strict parsing, field-named errors, limits.

One parser serves the CLI, the local HTTP API and the Lambda API route, so a bad
request gets the same message everywhere.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)

from sim_serverless_sweep.sim.params import (
    DEMAND_PARAMS,
    MAX_EXPECTED_REQUESTS,
    PARAMETERS,
    max_expected_requests,
)

RUN_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"
SEED_LIMIT = 2**63
MAX_REPLICATIONS = 1_000
DEFAULT_MAX_SHARDS = 1_000
DEFAULT_MAX_POINTS = 100_000
MAX_BODY_BYTES = 64 * 1024

DimensionValue = StrictInt | StrictFloat


@dataclass(frozen=True, slots=True)
class Limits:
    """Deployment limits on a request; read from the environment by the caller."""

    max_shards: int = DEFAULT_MAX_SHARDS
    max_points: int = DEFAULT_MAX_POINTS
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Limits from ``MAX_SHARDS`` / ``MAX_POINTS``; raises ConfigError if malformed.

        >>> Limits.from_env({"MAX_SHARDS": "10"}).max_shards
        10
        """
        return cls(
            max_shards=_positive_int_env(environ, "MAX_SHARDS", DEFAULT_MAX_SHARDS),
            max_points=_positive_int_env(environ, "MAX_POINTS", DEFAULT_MAX_POINTS),
        )


class ConfigError(ValueError):
    """Deployment configuration (environment variables) is missing or malformed."""


def _positive_int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ConfigError(f"{name}: {raw!r} is not a positive integer")
    return int(raw)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One violation: where, what was given, which rule it breaks."""

    field: str
    value: Any
    rule: str

    def message(self) -> str:
        """Human-readable one-liner.

        >>> FieldProblem("seed", -1, "must be >= 0").message()
        'seed: -1 — must be >= 0'
        """
        if self.value is _MISSING:
            return f"{self.field}: {self.rule}"
        return f"{self.field}: {_short_repr(self.value)} — {self.rule}"

    def to_dict(self) -> dict[str, Any]:
        value = None if self.value is _MISSING else _jsonable(self.value)
        return {"field": self.field, "value": value, "rule": self.rule, "message": self.message()}


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _short_repr(value: Any) -> str:
    text = json.dumps(_jsonable(value)) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


class RequestError(ValueError):
    """A request that breaks the contract; ``problems`` lists every violation found."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message() for p in problems))

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": "invalid_request",
            "message": f"{len(self.problems)} problem(s) in the request",
            "problems": [p.to_dict() for p in self.problems],
        }


class SweepRequest(BaseModel):
    """A sweep request exactly as the spec's JSON; construct via :func:`parse_request`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    dimensions: dict[str, list[DimensionValue]]
    shard_count: StrictInt | None = None
    shard_size: StrictInt | None = None
    seed: StrictInt = Field(ge=0, lt=SEED_LIMIT)
    failure_injection_shards: list[StrictInt] = Field(default_factory=list)
    replications: StrictInt = Field(default=1, ge=1, le=MAX_REPLICATIONS)

    @field_validator("dimensions")
    @classmethod
    def _normalise_float_params(
        cls, dimensions: dict[str, list[int | float]]
    ) -> dict[str, list[int | float]]:
        # Float parameters accept JSON integers (0 -> 0.0) so equal requests compare equal.
        return {
            name: [_as_float(v) if _is_float_param(name) else v for v in values]
            for name, values in dimensions.items()
        }

    @property
    def points(self) -> int:
        """Number of grid points (product of dimension lengths)."""
        return math.prod(len(values) for values in self.dimensions.values())

    def canonical_json(self) -> str:
        """Stable JSON text of the request (sorted keys), for hashing and manifests."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _as_float(value: int | float) -> int | float:
    # + 0.0 turns -0.0 into 0.0: the same parameter value, so the same request and bytes.
    try:
        return float(value) + 0.0
    except OverflowError:
        return value  # out of range; the registry check has already reported it


def _is_float_param(name: str) -> bool:
    spec = PARAMETERS.get(name)
    return spec is not None and spec.kind == "float"


_RULES = {
    "extra_forbidden": "unknown field (not part of the request contract)",
    "missing": "required field is missing",
    "int_type": "must be an integer (no strings, booleans or decimals)",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "finite_number": "must be a finite number (NaN and Infinity are not allowed)",
}


def _problems_from_validation(exc: ValidationError) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    for err in exc.errors():
        loc = err["loc"]
        # A value that failed both union members is reported once, at its own location.
        loc = tuple(part for part in loc if part not in ("int", "float"))
        field = _field_path(loc)
        if field in seen:
            continue
        seen.add(field)
        kind = err["type"]
        if kind == "string_pattern_mismatch" and field == "run_id":
            rule = (
                "must be 1-128 characters of A-Z a-z 0-9 . _ - and must not start with "
                "'.' or '-' (it becomes part of storage keys)"
            )
        elif field == "seed" and kind in ("greater_than_equal", "less_than"):
            rule = "must be an integer with 0 <= seed < 2^63"
        elif field == "replications" and kind in ("greater_than_equal", "less_than_equal"):
            rule = f"must be an integer from 1 to {MAX_REPLICATIONS}"
        elif kind in ("int_type", "float_type") and loc and loc[0] == "dimensions":
            rule = "must be a number (strings and booleans are not accepted)"
        elif kind == "extra_forbidden" and len(loc) == 1:
            rule = _RULES[kind] + did_you_mean(str(loc[0]), SweepRequest.model_fields)
        else:
            rule = _RULES.get(kind) or err["msg"]
        value = err.get("input", _MISSING) if kind != "missing" else _MISSING
        problems.append(FieldProblem(field, value, rule))
    return problems


def did_you_mean(given: str, known: Iterable[str]) -> str:
    """A '; did you mean ...?' hint for a misspelt name, or '' if nothing is close.

    >>> did_you_mean("shard_cont", ["shard_count", "seed"])
    "; did you mean 'shard_count'?"
    """
    close = difflib.get_close_matches(given, list(known), n=3, cutoff=0.7)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{name}'" for name in close) + "?"


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "request"


def _check_dimensions(dimensions: Mapping[str, list[int | float]]) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not dimensions:
        problems.append(
            FieldProblem("dimensions", {}, "must name at least one simulation parameter")
        )
    for name, values in dimensions.items():
        field = f"dimensions.{name}"
        spec = PARAMETERS.get(name)
        if spec is None:
            problems.append(
                FieldProblem(
                    field,
                    _MISSING,
                    f"unknown simulation parameter '{name}'{did_you_mean(name, PARAMETERS)} "
                    f"(known: {', '.join(PARAMETERS)})",
                )
            )
            continue
        if not values:
            problems.append(FieldProblem(field, values, "must be a non-empty list of values"))
            continue
        seen: set[int | float] = set()
        for i, value in enumerate(values):
            problem = spec.check(value)
            if problem is not None:
                rule = problem.split(": ", 1)[1] if ": " in problem else problem
                problems.append(FieldProblem(f"{field}[{i}]", value, _rule_from_check(rule)))
            elif value in seen:
                problems.append(
                    FieldProblem(f"{field}[{i}]", value, "duplicate value (values must be unique)")
                )
            else:
                seen.add(value)
    problems.extend(_check_combinations(dimensions))
    return problems


def _rule_from_check(text: str) -> str:
    # ParamSpec.check says "<value> is ...": keep only the rule part.
    return text.split(" ", 1)[1] if " is " in text else text


def _check_combinations(dimensions: Mapping[str, list[int | float]]) -> list[FieldProblem]:
    """Constraints across parameters that every grid point must satisfy."""
    if not all(
        name in PARAMETERS and values and all(PARAMETERS[name].check(v) is None for v in values)
        for name, values in dimensions.items()
    ):
        return []  # value problems are reported already; combinations need valid values
    problems: list[FieldProblem] = []
    warmups = dimensions.get("warmup_min") or [PARAMETERS["warmup_min"].default]
    horizons = dimensions.get("horizon_min") or [PARAMETERS["horizon_min"].default]
    if max(warmups) >= min(horizons):
        field = "dimensions.warmup_min" if "warmup_min" in dimensions else "dimensions.horizon_min"
        problems.append(
            FieldProblem(
                field,
                max(warmups) if "warmup_min" in dimensions else min(horizons),
                f"every warmup_min must be below every horizon_min (largest warm-up "
                f"{max(warmups)}, smallest horizon {min(horizons)})",
            )
        )
    demand = max_expected_requests(dimensions)
    if demand > MAX_EXPECTED_REQUESTS:
        field = next((f"dimensions.{n}" for n in DEMAND_PARAMS if n in dimensions), "dimensions")
        problems.append(
            FieldProblem(
                field,
                _MISSING,
                f"the busiest grid point expects {demand:,.0f} requests per run "
                f"(num_riders x request_rate_per_hour x horizon_min x largest price response "
                f"x time-of-day peaks); "
                f"the model allows at most {MAX_EXPECTED_REQUESTS:,}",
            )
        )
    return problems


def _check_sharding(request: SweepRequest, limits: Limits) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    points = request.points
    if request.shard_count is None and request.shard_size is None:
        problems.append(
            FieldProblem(
                "shard_count",
                _MISSING,
                "exactly one of shard_count or shard_size is required (neither was given)",
            )
        )
        return problems
    if request.shard_count is not None and request.shard_size is not None:
        problems.append(
            FieldProblem(
                "shard_size",
                request.shard_size,
                "give exactly one of shard_count or shard_size, not both",
            )
        )
        return problems
    simulations = points * request.replications
    if simulations > limits.max_points:
        field = "replications" if request.replications > 1 else "dimensions"
        problems.append(
            FieldProblem(
                field,
                simulations,
                f"the grid has {points} points x "
                f"{request.replications} replication(s) = {simulations} simulations; "
                f"MAX_POINTS allows at most {limits.max_points}",
            )
        )
    shard_count = request.shard_count
    if request.shard_count is not None:
        if request.shard_count < 1:
            problems.append(FieldProblem("shard_count", request.shard_count, "must be >= 1"))
            return problems
        if request.shard_count > limits.max_shards:
            problems.append(
                FieldProblem(
                    "shard_count",
                    request.shard_count,
                    f"must be <= MAX_SHARDS ({limits.max_shards})",
                )
            )
        if points and request.shard_count > points:
            problems.append(
                FieldProblem(
                    "shard_count",
                    request.shard_count,
                    f"must be <= the number of points ({points}); empty shards are not allowed",
                )
            )
    if request.shard_size is not None:
        if request.shard_size < 1:
            problems.append(FieldProblem("shard_size", request.shard_size, "must be >= 1"))
            return problems
        shard_count = -(-points // request.shard_size)
        if shard_count > limits.max_shards:
            problems.append(
                FieldProblem(
                    "shard_size",
                    request.shard_size,
                    f"gives {shard_count} shards for {points} points; "
                    f"MAX_SHARDS allows at most {limits.max_shards}",
                )
            )
    seen: set[int] = set()
    for i, shard_id in enumerate(request.failure_injection_shards):
        field = f"failure_injection_shards[{i}]"
        if shard_count is not None and not 0 <= shard_id < shard_count:
            problems.append(
                FieldProblem(
                    field,
                    shard_id,
                    f"must be a shard id in [0, {shard_count - 1}] (shard ids are 0-based)",
                )
            )
        elif shard_id in seen:
            problems.append(FieldProblem(field, shard_id, "duplicate shard id"))
        seen.add(shard_id)
    return problems


def parse_request(
    body: bytes | str | Mapping[str, Any], limits: Limits | None = None
) -> SweepRequest:
    """Parse and validate a request; raise RequestError listing every violation.

    >>> parse_request('{"run_id": "r1", "dimensions": {"num_drivers": [10, 20]},'
    ...               ' "shard_count": 2, "seed": 0}').points
    2
    """
    limits = limits or Limits()
    raw = _decode(body, limits)
    problems: list[FieldProblem] = []
    dims = raw.get("dimensions")
    if isinstance(dims, dict):
        problems.extend(_check_dimensions({k: v for k, v in dims.items() if isinstance(v, list)}))
    try:
        request = SweepRequest.model_validate(raw)
    except ValidationError as exc:
        # Registry checks first: their messages name the parameter's own rule.
        raise RequestError(_dedupe(problems + _problems_from_validation(exc))) from None
    problems.extend(_check_sharding(request, limits))
    if problems:
        raise RequestError(_dedupe(problems))
    return request


def _dedupe(problems: list[FieldProblem]) -> list[FieldProblem]:
    seen: set[str] = set()
    unique: list[FieldProblem] = []
    for problem in problems:
        if problem.field not in seen:
            seen.add(problem.field)
            unique.append(problem)
    return unique


def _decode(body: bytes | str | Mapping[str, Any], limits: Limits) -> dict[str, Any]:
    if isinstance(body, Mapping):
        return dict(body)
    data = body.encode() if isinstance(body, str) else body
    if len(data) > limits.max_body_bytes:
        raise RequestError(
            [
                FieldProblem(
                    "request",
                    _MISSING,
                    f"body is {len(data)} bytes; the limit is {limits.max_body_bytes} bytes",
                )
            ]
        )
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]  # tolerated: some editors write one
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            [
                FieldProblem(
                    "request",
                    _MISSING,
                    f"body must be UTF-8 JSON (byte {exc.start} is not UTF-8; UTF-16 and "
                    "UTF-32 are not accepted)",
                )
            ]
        ) from None
    try:
        parsed = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_refuse_duplicate_keys
        )
    except _DuplicateKey as exc:
        raise RequestError(
            [
                FieldProblem(
                    exc.key,
                    _MISSING,
                    f"duplicate key {exc.key!r} in the JSON (each key may appear once per "
                    "object; which one counts would be a guess)",
                )
            ]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise RequestError(
            [FieldProblem("request", _MISSING, f"body is not valid JSON ({exc})")]
        ) from None
    if not isinstance(parsed, dict):
        raise RequestError([FieldProblem("request", parsed, "must be a JSON object")])
    return parsed


UTF8_BOM = b"\xef\xbb\xbf"


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (NaN and Infinity are not numbers here)")


def request_json_schema() -> dict[str, Any]:
    """JSON Schema of the request, with the parameter registry's ranges filled in."""
    schema = SweepRequest.model_json_schema()
    props: dict[str, Any] = {}
    for name, spec in PARAMETERS.items():
        item: dict[str, Any] = {
            "type": "integer" if spec.kind == "int" else "number",
            "minimum": spec.minimum,
            "maximum": spec.maximum,
            "description": f"{spec.description} Unit: {spec.unit}. Default {spec.default}.",
        }
        props[name] = {"type": "array", "items": item, "minItems": 1, "uniqueItems": True}
    schema["properties"]["dimensions"] = {
        "type": "object",
        "description": "Parameter name -> list of values; the grid is their Cartesian product.",
        "properties": props,
        "additionalProperties": False,
        "minProperties": 1,
    }
    # Exactly one of them as an integer (null counts as absent, as the parser treats it).
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"type": "integer"}}}
        for name in ("shard_count", "shard_size")
    ]
    for name in ("shard_count", "shard_size", "seed", "replications"):
        schema["properties"][name]["description"] = (
            "A JSON integer literal (8, not 8.0: the parser is strict)."
        )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
