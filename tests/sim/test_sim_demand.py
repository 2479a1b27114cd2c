"""Riders respond to their own quote: the fare of their trip and the pickup ETA."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_serverless_sweep.sim import PARAMETERS, simulate

SEEDS = range(16)
STEP = 0.1  # fares x (1 - STEP) and x (1 + STEP)


def window_requests(scale: float) -> np.ndarray:
    """Window requests at defaults with every fare component scaled; the commission takes
    up the difference so drivers' pay per trip does not change."""
    params = {
        name: float(PARAMETERS[name].default) * scale
        for name in ("base_fare", "per_km_fare", "per_min_fare")
    }
    params["commission_rate"] = 1.0 - (1.0 - float(PARAMETERS["commission_rate"].default)) / scale
    return np.array([simulate(params, seed).metrics["requests"][0].as_py() for seed in SEEDS])


def test_measured_price_elasticity_of_requests_is_the_configured_one() -> None:
    """Arc elasticity of window requests to the level of fares, at defaults, over 16 seeds.

    Wait feedback included: dearer rides mean fewer requests, shorter quoted ETAs and
    fewer busy riders, which all push back. Drivers' pay per trip is held, so the price
    change reaches supply only through the trips it adds or removes (measured 0.50 over 30
    seeds). If drivers' pay moves with the fare, more drivers come online at higher fares
    and shorter waits win back riders: the general-equilibrium elasticity is ~0.31.
    """
    low, high = window_requests(1.0 - STEP), window_requests(1.0 + STEP)
    measured = -math.log(high.sum() / low.sum()) / math.log((1.0 + STEP) / (1.0 - STEP))
    configured = float(PARAMETERS["price_elasticity"].default)
    assert measured == pytest.approx(configured, rel=0.10)


def test_the_trip_mix_responds_to_price() -> None:
    """Riders see their own fare: long (dear) trips lose more requests than short ones."""
    km = {
        e: np.concatenate(
            [
                simulate({"price_elasticity": e, "horizon_min": 240}, s).trips["trip_km"].to_numpy()
                for s in range(3)
            ]
        )
        for e in (0.0, 1.0)
    }
    assert km[1.0].mean() < 0.9 * km[0.0].mean()


def test_city_size_changes_demand_only_through_the_fares_riders_see() -> None:
    """A bigger city means longer, dearer trips: fewer requests, mostly short ones."""
    small, large = (
        [simulate({"city_size_km": side, "horizon_min": 240}, s).trips for s in range(3)]
        for side in (4.0, 16.0)
    )
    n_small = sum(t.num_rows for t in small)
    n_large = sum(t.num_rows for t in large)
    assert n_large < n_small
    km_large = np.concatenate([t["trip_km"].to_numpy() for t in large])
    # Uniform trips in a 16 km city average 0.52 x 16 = 8.3 km; riders favour cheap ones.
    assert km_large.mean() < 0.5214 * 16.0 * 0.9


def test_riders_quoted_a_long_wait_request_less() -> None:
    """Same market, same candidates: only how much riders mind the quoted ETA differs."""
    tight = {"num_drivers": 40, "num_riders": 1_000, "horizon_min": 240}
    requests = {
        el: sum(simulate({**tight, "wait_elasticity": el}, s).trips.num_rows for s in range(3))
        for el in (0.0, 1.0)
    }
    assert requests[1.0] < 0.95 * requests[0.0]
