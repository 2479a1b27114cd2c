"""Little's-law self-checks: the counts in the snapshots agree with the trip durations."""

from __future__ import annotations

import pytest

from sim_serverless_sweep.sim import simulate


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identity_ratios_within_3_percent_on_default_run(seed: int) -> None:
    row = simulate({}, seed).metrics.to_pylist()[0]
    assert row["completed"] > 300  # a busy enough window for the check to mean something
    assert row["on_trip_identity_ratio"] == pytest.approx(1.0, abs=0.03)
    assert row["en_route_identity_ratio"] == pytest.approx(1.0, abs=0.03)


def test_identity_ratios_hold_when_drivers_are_scarce() -> None:
    row = simulate({"num_drivers": 40, "num_riders": 1_500}, 4).metrics.to_pylist()[0]
    assert row["completion_rate"] < 0.9  # genuinely undersupplied
    assert row["on_trip_identity_ratio"] == pytest.approx(1.0, abs=0.03)
    assert row["en_route_identity_ratio"] == pytest.approx(1.0, abs=0.03)


def test_identity_ratios_are_null_without_trips() -> None:
    row = simulate({"request_rate_per_hour": 0.0}, 0).metrics.to_pylist()[0]
    assert row["requests"] == 0
    assert row["on_trip_identity_ratio"] is None
    assert row["en_route_identity_ratio"] is None
    assert row["completion_rate"] is None
    assert row["wait_mean_min"] is None
