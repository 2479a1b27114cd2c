"""Directions a credible market must show, averaged over seeds to beat the noise."""

from __future__ import annotations

import numpy as np

from sim_serverless_sweep.sim import simulate

SEEDS = range(4)
BASE = {"horizon_min": 360, "warmup_min": 120}


def mean_metrics(**overrides: float) -> dict[str, float]:
    rows = [simulate({**BASE, **overrides}, seed).metrics.to_pylist()[0] for seed in SEEDS]
    return {
        key: float(np.mean([float(r[key]) for r in rows]))
        for key in rows[0]
        if all(r[key] is not None for r in rows)
    }


def test_more_drivers_lower_wait_higher_completion() -> None:
    few, many = mean_metrics(num_drivers=60), mean_metrics(num_drivers=300)
    assert many["mean_online_drivers"] > few["mean_online_drivers"]
    assert many["wait_mean_min"] < few["wait_mean_min"]
    assert many["completion_rate"] > few["completion_rate"]


def test_more_riders_more_requests_higher_utilisation() -> None:
    few, many = mean_metrics(num_riders=400), mean_metrics(num_riders=1_000)
    assert many["requests"] > 1.8 * few["requests"]
    assert many["utilisation"] > few["utilisation"]


def test_higher_commission_fewer_drivers_more_revenue_per_trip() -> None:
    low, high = mean_metrics(commission_rate=0.1), mean_metrics(commission_rate=0.3)
    assert high["mean_online_drivers"] < low["mean_online_drivers"]
    assert high["platform_revenue"] / high["completed"] > low["platform_revenue"] / low["completed"]


def test_pricier_rides_and_longer_waits_lower_demand() -> None:
    cheap, dear = mean_metrics(per_km_fare=0.8), mean_metrics(per_km_fare=2.0)
    assert dear["requests"] < cheap["requests"]
    patient_market = mean_metrics(num_drivers=40, wait_elasticity=0.0)
    deterred_market = mean_metrics(num_drivers=40, wait_elasticity=2.0)
    assert deterred_market["requests"] < patient_market["requests"]


def test_impatient_riders_cancel_more() -> None:
    patient = mean_metrics(num_drivers=40, patience_mean_min=20.0)
    impatient = mean_metrics(num_drivers=40, patience_mean_min=2.0)
    assert impatient["completion_rate"] < patient["completion_rate"]
