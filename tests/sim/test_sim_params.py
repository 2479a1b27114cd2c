"""The parameter registry: every parameter described, bad input named precisely."""

from __future__ import annotations

import itertools

import pytest

from sim_serverless_sweep.sim import PARAMETERS, ParameterError, resolve_params, simulate
from sim_serverless_sweep.sim.params import expected_candidate_requests, max_expected_requests


def test_seed_dimensions_exist_with_sensible_defaults() -> None:
    for name in ("commission_rate", "num_drivers", "num_riders"):
        assert name in PARAMETERS
    assert PARAMETERS["num_drivers"].kind == "int"
    assert PARAMETERS["commission_rate"].kind == "float"


@pytest.mark.parametrize("spec", list(PARAMETERS.values()), ids=lambda s: s.name)
def test_every_parameter_is_fully_described(spec: object) -> None:
    from sim_serverless_sweep.sim import ParamSpec

    assert isinstance(spec, ParamSpec)
    assert spec.minimum <= spec.default <= spec.maximum
    assert spec.unit and spec.description
    assert spec.source  # a cited figure, a derivation, "simulation control" or "a guess"
    assert spec.check(spec.default) is None
    assert spec.check(spec.minimum) is None and spec.check(spec.maximum) is None


def test_defaults_resolve_with_declared_kinds() -> None:
    resolved = resolve_params({})
    assert list(resolved) == list(PARAMETERS)
    for name, value in resolved.items():
        expected = int if PARAMETERS[name].kind == "int" else float
        assert type(value) is expected


def test_unknown_and_out_of_range_are_all_reported() -> None:
    with pytest.raises(ParameterError) as err:
        resolve_params({"num_driverz": 5, "commission_rate": 1.5, "num_drivers": 2.5})
    problems = err.value.problems
    assert len(problems) == 3
    assert any("num_driverz" in p and "unknown" in p for p in problems)
    assert any("commission_rate" in p and "1.5" in p and "[0.0, 0.9]" in p for p in problems)
    assert any("num_drivers" in p and "2.5" in p and "integer" in p for p in problems)


@pytest.mark.parametrize("bad", [True, "3", float("nan"), None])
def test_non_numbers_rejected(bad: object) -> None:
    with pytest.raises(ParameterError, match="commission_rate"):
        resolve_params({"commission_rate": bad})


def test_cross_parameter_rules() -> None:
    with pytest.raises(ParameterError, match=r"warmup_min: 500 must be below horizon_min \(480\)"):
        resolve_params({"warmup_min": 500})
    with pytest.raises(ParameterError, match="expected requests"):
        resolve_params({"num_riders": 200_000, "request_rate_per_hour": 10.0, "horizon_min": 600})


def test_simulate_validates_before_running() -> None:
    with pytest.raises(ParameterError, match="num_riders"):
        simulate({"num_riders": 0}, 0)
    with pytest.raises(TypeError):
        simulate({}, "seed")  # type: ignore[arg-type]


def test_demand_bound_covers_every_mechanism() -> None:
    """Requests a run holds stay below expected_candidate_requests (the contract's limit
    check), and the grid bound covers every point of the grid."""
    grid: dict[str, list[int | float]] = {
        "base_fare": [0.5, 2.5],
        "morning_peak_amplitude": [0.0, 3.0],
        "evening_peak_amplitude": [0.0, 1.0],
        "surge_max": [1.0, 3.0],
        "hotspot_share": [0.0, 0.8],
        "horizon_min": [240],
        "warmup_min": [60],
        "num_drivers": [300],
    }
    bound = max_expected_requests(grid)
    for combo in itertools.product(*grid.values()):
        params = dict(zip(grid, combo, strict=True))
        expected = expected_candidate_requests(resolve_params(params))
        assert expected <= bound
        if params["hotspot_share"] == 0.0 and params["surge_max"] == 1.0:
            requests = simulate(params, 1).trips.num_rows
            assert 0 < requests <= expected
