"""Mechanisms 5-9: neutral when off (identities), and doing what they say when on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from sim_serverless_sweep.sim import SimResult, simulate
from sim_serverless_sweep.sim.model import demand_share
from sim_serverless_sweep.sim.params import resolve_params

SHORT = {"horizon_min": 240, "warmup_min": 60}
# Few drivers for the riders: queues, hence surge, declines and shortages show.
TIGHT = {**SHORT, "num_drivers": 50, "num_riders": 1_200}


def same(a: SimResult, b: SimResult) -> bool:
    return bool(
        a.trips.equals(b.trips) and a.snapshots.equals(b.snapshots) and a.metrics.equals(b.metrics)
    )


def row(params: Mapping[str, float], seed: int = 0) -> dict[str, Any]:
    metrics: dict[str, Any] = simulate(params, seed).metrics.to_pylist()[0]
    return metrics


# ---- identities: a mechanism switched off ignores its other parameters ----------------


@pytest.mark.parametrize(
    ("off", "other"),
    [
        ({"morning_peak_amplitude": 0.0}, {"morning_peak_hour": 13.0, "peak_width_hours": 4.0}),
        ({"hotspot_share": 0.0}, {"hotspot_size_share": 0.6}),
        ({"surge_max": 1.0}, {"surge_sensitivity": 5.0}),
        ({"acceptance_wage_share": 0.0}, {"decline_timeout_s": 600}),
        ({"shift_mean_hours": 0.0}, {"rest_mean_hours": 1.0}),
    ],
    ids=["peaks", "hotspot", "surge", "acceptance", "shifts"],
)
def test_a_mechanism_switched_off_ignores_its_other_parameters(
    off: dict[str, float], other: dict[str, float]
) -> None:
    assert same(simulate({**TIGHT, **off}, 4), simulate({**TIGHT, **off, **other}, 4))


def test_the_clock_wraps_at_24_hours() -> None:
    peak = {**SHORT, "morning_peak_amplitude": 1.5, "morning_peak_hour": 1.0}
    assert same(simulate({**peak, "start_hour": 0.0}, 2), simulate({**peak, "start_hour": 24.0}, 2))


def test_off_mechanisms_report_neutral_values() -> None:
    metrics = row(TIGHT)
    assert metrics["acceptance_rate"] == 1.0
    assert metrics["mean_surge_multiplier"] == 1.0
    trips = simulate(TIGHT, 0).trips
    assert set(trips["surge_multiplier"].to_pylist()) == {1.0}


# ---- 5. time-of-day demand ------------------------------------------------------------


def test_peak_hours_bring_more_requests_and_longer_waits() -> None:
    """A morning peak of amplitude 1 at 08:00 doubles the rate there; a fixed fleet then
    runs short at the peak (waits rise) while the early morning is quiet."""
    params = {
        "num_drivers": 70,
        "reservation_wage_mean": 0.0,
        "supply_response_per_min": 0.0,
        "price_elasticity": 0.0,
        "wait_elasticity": 0.0,
        "num_riders": 20_000,
        "request_rate_per_hour": 0.01,
        "start_hour": 4.0,
        "morning_peak_amplitude": 1.0,
        "morning_peak_hour": 8.0,
        "peak_width_hours": 0.75,
        "horizon_min": 480,
        "warmup_min": 60,
    }
    quiet, peak = [], []
    wait_quiet, wait_peak = [], []
    for seed in range(3):
        trips = simulate(params, seed).trips.to_pydict()
        hour = 4.0 + np.array(trips["request_time_min"]) / 60.0
        waits = np.array([w if w is not None else np.nan for w in trips["wait_min"]])
        picked = np.array([p is not None for p in trips["pickup_time_min"]])
        quiet.append(np.count_nonzero((hour >= 5.0) & (hour < 5.5)))
        peak.append(np.count_nonzero((hour >= 7.75) & (hour < 8.25)))
        wait_quiet += waits[(hour >= 5.0) & (hour < 6.0) & picked].tolist()
        wait_peak += waits[(hour >= 7.5) & (hour < 8.5) & picked].tolist()
    # Expected ratio (1 + ~0.97) / (1 + ~0.0); riders stay free (rare requests each).
    assert np.mean(peak) / np.mean(quiet) == pytest.approx(1.93, rel=0.15)
    assert np.mean(wait_peak) > 1.2 * np.mean(wait_quiet)


# ---- 6. spatial demand ----------------------------------------------------------------


def test_hotspot_origins_and_destinations_fall_in_the_centre() -> None:
    side, size = 8.0, 0.25
    lo, hi = side * (1 - size) / 2, side * (1 + size) / 2
    trips = simulate(
        {**SHORT, "hotspot_share": 1.0, "hotspot_destination_share": 1.0}, 1
    ).trips.to_pydict()
    for axis in ("origin_x_km", "origin_y_km", "destination_x_km", "destination_y_km"):
        values = np.array(trips[axis])
        assert ((values >= lo) & (values <= hi)).all(), axis
    half = simulate({**SHORT, "hotspot_share": 0.5}, 1).trips.to_pydict()
    inside = (np.abs(np.array(half["origin_x_km"]) - 4.0) < 1.0) & (
        np.abs(np.array(half["origin_y_km"]) - 4.0) < 1.0
    )
    # Half in the hotspot (1/16 of the area) plus 1/16 of the uniform half.
    assert inside.mean() == pytest.approx(0.5 + 0.5 / 16, abs=0.06)


def test_demand_share_puts_the_hotspot_in_the_central_cells() -> None:
    share = demand_share(resolve_params({"hotspot_share": 0.6, "hotspot_size_share": 0.25}))
    assert share.sum() == pytest.approx(1.0)
    grid = share.reshape(8, 8)
    assert grid[3:5, 3:5].sum() == pytest.approx(0.6 + 0.4 * 4 / 64)


def test_repositioning_toward_a_hotspot_shortens_waits() -> None:
    hot = {**SHORT, "hotspot_share": 0.8, "num_drivers": 200, "reservation_wage_mean": 10.0}
    on = [row(hot, s)["wait_mean_min"] for s in range(3)]
    off = [row({**hot, "reposition_rate_per_min": 0.0}, s)["wait_mean_min"] for s in range(3)]
    assert np.mean(on) < 0.9 * np.mean(off)


# ---- 7. surge pricing -----------------------------------------------------------------


def test_surge_raises_fares_when_requests_outnumber_idle_drivers() -> None:
    flat = simulate(TIGHT, 3)
    surged = simulate({**TIGHT, "surge_max": 2.5}, 3)
    trips = surged.trips.to_pydict()
    multipliers = np.array(trips["surge_multiplier"])
    assert multipliers.max() > 1.2 and multipliers.max() <= 2.5 and multipliers.min() >= 1.0
    # Commission applies to the surged fare (invariants check the cents add up).
    m_flat, m_surged = flat.metrics.to_pylist()[0], surged.metrics.to_pylist()[0]
    assert m_surged["mean_surge_multiplier"] > 1.05
    per_trip = float(m_surged["gross_bookings"]) / m_surged["completed"]
    assert per_trip > float(m_flat["gross_bookings"]) / m_flat["completed"]
    # Riders see the surged price: fewer requests.
    assert m_surged["requests"] < m_flat["requests"]


# ---- 8. driver acceptance -------------------------------------------------------------


def test_drivers_decline_poorly_paid_offers_more_the_higher_their_bar() -> None:
    rates = [
        row({**TIGHT, "acceptance_wage_share": share})["acceptance_rate"]
        for share in (0.25, 1.0, 1.5, 2.0)
    ]
    # A low bar declines nothing (net pay per minute is well above a quarter of the wage).
    assert rates[0] == 1.0
    assert 1.0 > rates[1] > rates[2] > rates[3] > 0.0


# ---- 9. driver hours ------------------------------------------------------------------


def test_shifts_add_an_intensive_margin() -> None:
    """With 3-hour shifts more distinct drivers share the online hours; without, a fixed
    fleet is the same drivers all window long."""
    fixed = {**SHORT, "reservation_wage_mean": 0.0, "supply_response_per_min": 0.0}
    always = row(fixed)
    assert always["active_drivers"] == round(always["mean_online_drivers"])
    assert always["online_hours_per_active_driver"] == pytest.approx(3.0)
    spread = {**SHORT, "shift_mean_hours": 3.0, "rest_mean_hours": 4.0}
    shifts = row(spread)
    assert shifts["active_drivers"] > 1.3 * shifts["mean_online_drivers"]
    assert shifts["online_hours_per_active_driver"] < 0.8 * 3.0
