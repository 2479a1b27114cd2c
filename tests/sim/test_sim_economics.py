"""Supply economics: free entry reaches N*, a wage spread gives a smooth supply curve."""

from __future__ import annotations

import numpy as np
import pytest

from sim_serverless_sweep.sim import simulate
from sim_serverless_sweep.sim.model import _simulate
from sim_serverless_sweep.sim.params import MEAN_DISTANCE_UNIT_SQUARE, PARAMETERS

WAGE = 20.0  # currency per online hour
RIDERS = 50_000
RATE = 0.006  # requests per rider per hour: many riders, each rarely busy

# Spread 0, demand blind to price and wait, no operating cost and no per-minute fare, so
# every quantity in N* is known before the run (docs/model.md, "Free-entry equilibrium").
FREE_ENTRY = {
    "reservation_wage_spread": 0.0,
    "reservation_wage_mean": WAGE,
    "price_elasticity": 0.0,
    "wait_elasticity": 0.0,
    "operating_cost_per_km": 0.0,
    "per_min_fare": 0.0,
    "num_riders": RIDERS,
    "request_rate_per_hour": RATE,
    "num_drivers": 300,
    "patience_mean_min": 30.0,
    "horizon_min": 720,
    "warmup_min": 240,
}


def free_entry_fleet(commission: float) -> float:
    """N* = R * L * p * (1 - f) / w, in minutes.

    R = requests per minute, L = mean trip minutes, p = fare per on-trip minute
    (= mean fare / L), w = reservation wage per minute. L cancels: N* = R * fare (1-f) / w.
    """
    r = RIDERS * RATE / 60.0
    side = float(PARAMETERS["city_size_km"].default)
    mean_fare = (
        float(PARAMETERS["base_fare"].default)
        + float(PARAMETERS["per_km_fare"].default) * MEAN_DISTANCE_UNIT_SQUARE * side
    )
    return r * mean_fare * (1.0 - commission) / (WAGE / 60.0)


@pytest.mark.parametrize("commission", [0.1, 0.3])
@pytest.mark.parametrize("cold_start", [None, 0.5, 0.05], ids=["warm", "half", "few"])
def test_online_fleet_settles_at_free_entry_prediction(
    commission: float, cold_start: float | None
) -> None:
    n_star = free_entry_fleet(commission)
    online = [
        _simulate({**FREE_ENTRY, "commission_rate": commission}, seed, cold_start)
        .metrics["mean_online_drivers"][0]
        .as_py()
        for seed in range(3)
    ]
    assert float(np.mean(online)) == pytest.approx(n_star, rel=0.05)
    # The prediction only holds if (nearly) every request is served.
    row = simulate({**FREE_ENTRY, "commission_rate": commission}, 0).metrics.to_pylist()[0]
    assert row["completion_rate"] > 0.95
    assert row["driver_net_hourly_earnings"] == pytest.approx(WAGE, rel=0.06)


def online_by_commission(spread: float, commissions: np.ndarray) -> np.ndarray:
    base = {"reservation_wage_spread": spread, "horizon_min": 360, "warmup_min": 120}
    return np.array(
        [
            np.mean(
                [
                    simulate({**base, "commission_rate": float(f)}, seed)
                    .metrics["mean_online_drivers"][0]
                    .as_py()
                    for seed in range(3)
                ]
            )
            for f in commissions
        ]
    )


def test_wage_spread_gives_smooth_falling_supply() -> None:
    commissions = np.round(np.arange(0.0, 0.51, 0.05), 2)
    online = online_by_commission(10.0, commissions)
    steps = np.diff(online)
    assert online[-1] < 0.6 * online[0]  # commission does move supply
    assert (steps < 0.02 * online[0]).all()  # falls (up to seed noise) ...
    assert (-steps < 0.15 * online[0]).all()  # ... without a cliff ...
    assert online[-1] > 0.25 * online[0]  # ... and without collapsing to ~0


def test_common_wage_is_a_knife_edge() -> None:
    """Without a spread, supply vanishes once drivers cannot earn the wage at any size."""
    online = online_by_commission(0.0, np.array([0.1, 0.5]))
    assert online[0] > 15
    assert online[1] < 1


def test_fixed_fleet_makes_commission_pure_accounting() -> None:
    """With entry switched off, commission only splits the fare: operations are identical."""
    fixed = {"supply_response_per_min": 0.0, "horizon_min": 240, "warmup_min": 60}
    low = _simulate({**fixed, "commission_rate": 0.1}, 5, 0.3).trips
    high = _simulate({**fixed, "commission_rate": 0.4}, 5, 0.3).trips
    operational = [c for c in low.column_names if c not in ("commission", "driver_pay")]
    assert low.select(operational).equals(high.select(operational))
    assert low.column("commission") != high.column("commission")


@pytest.mark.parametrize("pool_over_n_star", [1.3, 3.0, 10.0, 30.0])
def test_online_fleet_does_not_grow_with_the_pool(pool_over_n_star: float) -> None:
    """Entry flows scale with the online fleet like exits, not with the offline pool."""
    commission = 0.1
    n_star = free_entry_fleet(commission)
    params = {**FREE_ENTRY, "commission_rate": commission}
    params["num_drivers"] = round(pool_over_n_star * n_star)
    online = [simulate(params, seed).metrics["mean_online_drivers"][0].as_py() for seed in range(3)]
    assert float(np.mean(online)) == pytest.approx(n_star, rel=0.03)
