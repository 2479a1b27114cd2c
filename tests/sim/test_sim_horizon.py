"""Past warm-up, results do not drift with the horizon, also in an undersupplied market."""

from __future__ import annotations

import statistics

import pytest

from sim_serverless_sweep.sim import simulate

# Undersupplied: a small pool, patient riders who wait long rather than cancel.
TIGHT = {"num_drivers": 40, "patience_mean_min": 30.0}
SEEDS = range(4)


def window_means(horizon: int) -> dict[str, float]:
    rows = [
        simulate({**TIGHT, "horizon_min": horizon}, seed).metrics.to_pylist()[0] for seed in SEEDS
    ]
    return {
        name: statistics.mean(float(r[name]) for r in rows)
        for name in ("completion_rate", "mean_online_drivers", "wait_mean_min", "utilisation")
    }


def test_undersupplied_market_does_not_drift_with_horizon() -> None:
    short, long = window_means(480), window_means(1440)
    assert short["completion_rate"] < 0.97  # the market really is tight
    assert long["completion_rate"] == pytest.approx(short["completion_rate"], rel=0.03)
    assert long["mean_online_drivers"] == pytest.approx(short["mean_online_drivers"], rel=0.05)
    assert long["utilisation"] == pytest.approx(short["utilisation"], rel=0.05)
    assert long["wait_mean_min"] == pytest.approx(short["wait_mean_min"], rel=0.10)


HEADLINE = (
    "wait_mean_min",
    "completion_rate",
    "utilisation",
    "mean_online_drivers",
    "driver_net_hourly_earnings",
)
# Idle drivers would pile up at the edges of a glutted market without repositioning.
OVERSUPPLIED = {"num_drivers": 800, "num_riders": 1_600, "reservation_wage_mean": 5.0}


@pytest.mark.parametrize("market", [OVERSUPPLIED, TIGHT], ids=["oversupplied", "undersupplied"])
def test_8_hours_and_24_hours_measure_the_same_market(market: dict[str, float]) -> None:
    """Within 2 % on every headline metric. The demand and supply streams are drawn in
    fixed blocks, so the 24-hour runs extend the 8-hour ones (same riders, wages, reviews
    for the first 8 hours): the comparison is not swamped by seed-to-seed noise.
    """
    means = {}
    for horizon in (480, 1440):
        rows = [
            simulate({**market, "horizon_min": horizon}, seed).metrics.to_pylist()[0]
            for seed in SEEDS
        ]
        means[horizon] = {name: statistics.mean(float(r[name]) for r in rows) for name in HEADLINE}
        means[horizon]["requests_per_hour"] = statistics.mean(
            r["requests"] / (horizon - r["window_start_minute"]) * 60.0 for r in rows
        )
    for name, short in means[480].items():
        assert means[1440][name] == pytest.approx(short, rel=0.02), name
