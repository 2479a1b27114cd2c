"""Exact times: waits are travel plus the batching delay, with no whole-minute rounding."""

from __future__ import annotations

import numpy as np
import pytest

from sim_serverless_sweep.sim import PARAMETERS, simulate

# Far more drivers than requests: every request is matched at the first round after it.
GLUT = {"num_drivers": 400, "num_riders": 200, "reservation_wage_mean": 5.0, "horizon_min": 360}


def served_columns(params: dict[str, float], seeds: range) -> dict[str, np.ndarray]:
    cols: dict[str, list[float]] = {"wait_min": [], "pickup_km": [], "match": [], "pickup": []}
    for seed in seeds:
        trips = simulate(params, seed).trips.to_pydict()
        for i, picked in enumerate(trips["pickup_time_min"]):
            if picked is not None and trips["in_window"][i]:
                cols["wait_min"].append(trips["wait_min"][i])
                cols["pickup_km"].append(trips["pickup_km"][i])
                cols["match"].append(trips["match_time_min"][i])
                cols["pickup"].append(picked)
    return {k: np.array(v) for k, v in cols.items()}


@pytest.mark.parametrize("speed", [25.0, 40.0])
def test_oversupplied_wait_is_pickup_drive_plus_half_a_matching_interval(speed: float) -> None:
    interval_min = float(PARAMETERS["match_interval_s"].default) / 60.0
    cols = served_columns({**GLUT, "speed_kmh": speed}, range(3))
    assert cols["wait_min"].size > 300
    drive = cols["pickup_km"] / (speed / 60.0)
    assert np.allclose(cols["pickup"] - cols["match"], drive)
    assert cols["wait_min"].mean() == pytest.approx(drive.mean() + interval_min / 2, rel=0.05)
    # No one-minute floor: with this many idle drivers many waits are shorter than that.
    assert (cols["wait_min"] < 1.0).mean() > 0.25


def test_pickup_minutes_fall_with_the_square_root_of_idle_drivers() -> None:
    """Nearest of n uniform idle drivers is ~1/sqrt(n) away: slope -0.5 on log-log."""
    idle, pickup = [], []
    for n in (40, 80, 160, 320, 640):
        fixed = {
            "num_drivers": n,
            "reservation_wage_mean": 0.0,  # everyone online ...
            "supply_response_per_min": 0.0,  # ... and staying
            "num_riders": 300,
            "horizon_min": 300,
            "warmup_min": 60,
        }
        idle_n, pickup_n = [], []
        for seed in range(3):
            result = simulate(fixed, seed)
            idle_n.append(np.mean(result.snapshots["drivers_idle"].to_numpy()[60:]))
            trips = result.trips.to_pydict()
            pickup_n += [
                pick - match
                for pick, match, w in zip(
                    trips["pickup_time_min"],
                    trips["match_time_min"],
                    trips["in_window"],
                    strict=True,
                )
                if pick is not None and w
            ]
        idle.append(np.mean(idle_n))
        pickup.append(np.mean(pickup_n))
    slope = np.polyfit(np.log(idle), np.log(pickup), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.05)
