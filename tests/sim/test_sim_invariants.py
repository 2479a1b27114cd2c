"""Invariants every run must satisfy, checked on the tables themselves."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim_serverless_sweep.sim import (
    METRICS_SCHEMA,
    PARAMETERS,
    SNAPSHOTS_SCHEMA,
    TRIPS_SCHEMA,
    SimResult,
    simulate,
)

SMALL = {"horizon_min": 240, "warmup_min": 60}

# Shapes of market the invariants must survive: default, scarce drivers, glut of drivers,
# tiny pool, no demand, and a knife-edge common wage.
SCENARIOS: list[dict[str, int | float]] = [
    {},
    {"num_drivers": 20, "num_riders": 1_500, **SMALL},
    {"num_drivers": 400, "num_riders": 200, "reservation_wage_mean": 5.0, **SMALL},
    {"num_drivers": 1, "num_riders": 50, **SMALL},
    {"request_rate_per_hour": 0.0, **SMALL},
    {"reservation_wage_spread": 0.0, "commission_rate": 0.5, **SMALL},
    # Every v2 mechanism on at once, in a tight market.
    {
        "num_drivers": 40,
        "num_riders": 1_200,
        "morning_peak_amplitude": 1.5,
        "start_hour": 6.0,
        "hotspot_share": 0.6,
        "hotspot_destination_share": 0.3,
        "surge_max": 3.0,
        "acceptance_wage_share": 1.0,
        "shift_mean_hours": 2.0,
        "rest_mean_hours": 1.0,
        "match_interval_s": 7,
        **SMALL,
    },
]


def check_invariants(result: SimResult, params: dict[str, int | float]) -> None:
    p = {name: params.get(name, spec.default) for name, spec in PARAMETERS.items()}
    trips, snaps, metrics = result.trips, result.snapshots, result.metrics
    assert trips.schema.equals(TRIPS_SCHEMA, check_metadata=True)
    assert snaps.schema.equals(SNAPSHOTS_SCHEMA, check_metadata=True)
    assert metrics.schema.equals(METRICS_SCHEMA, check_metadata=True)
    assert metrics.num_rows == 1
    assert snaps.num_rows == p["horizon_min"]

    s = {name: snaps.column(name).to_numpy() for name in snaps.column_names}
    drivers = (
        s["drivers_offline"] + s["drivers_idle"] + s["drivers_en_route"] + s["drivers_on_trip"]
    )
    assert (drivers == p["num_drivers"]).all()
    assert (s["riders_riding"] == s["drivers_on_trip"]).all()
    assert (np.diff(s["cumulative_requests"]) >= 0).all()

    t = {name: trips.column(name) for name in trips.column_names}
    n = trips.num_rows
    assert (t["trip_id"].to_numpy() == np.arange(n)).all()
    status = t["trip_status"].to_numpy(zero_copy_only=False)
    assert set(status) <= {"completed", "cancelled", "in_progress"}

    def minutes(name: str) -> npt.NDArray[np.int64]:
        return np.asarray(t[name].fill_null(-1).to_numpy(), dtype=np.int64)

    req, match, pick, drop = (
        minutes("request_minute"),
        minutes("match_minute"),
        minutes("pickup_minute"),
        minutes("dropoff_minute"),
    )
    completed = status == "completed"
    cancelled = status == "cancelled"
    # Exactly one outcome, and it agrees with the timestamps reached.
    assert ((drop >= 0) == completed).all()
    assert (cancelled <= (match < 0)).all()
    assert ((match >= 0) >= (pick >= 0)).all() and ((pick >= 0) >= (drop >= 0)).all()
    # Ordered times: exact times strictly (every phase takes time), minutes weakly; the
    # minute columns are the floors of the exact times.
    m = match >= 0
    k = pick >= 0
    d = drop >= 0

    def exact(name: str) -> npt.NDArray[np.float64]:
        return np.asarray(t[name].fill_null(np.nan).to_numpy(), dtype=np.float64)

    req_t, match_t, pick_t, drop_t, cancel_t = (
        exact(f"{phase}_time_min") for phase in ("request", "match", "pickup", "dropoff", "cancel")
    )
    assert (match_t[m] > req_t[m]).all()
    assert (pick_t[k] > match_t[k]).all()
    assert (drop_t[d] > pick_t[d]).all()
    c = cancelled
    assert (cancel_t[c] > req_t[c]).all() and np.isnan(cancel_t[~c]).all()
    for minute_col, times in ((req, req_t), (match, match_t), (pick, pick_t), (drop, drop_t)):
        present = minute_col >= 0
        assert (minute_col[present] == np.floor(times[present])).all()
        assert np.isnan(times[~present]).all()
    assert (match[m] >= req[m]).all() and (pick[k] >= match[k]).all()
    assert (drop[d] >= pick[d]).all()
    assert (req >= 0).all() and (req < p["horizon_min"]).all()
    assert (drop_t[d] < p["horizon_min"]).all()
    wait = t["wait_min"].to_numpy(zero_copy_only=False)
    assert np.allclose(wait[k], pick_t[k] - req_t[k])
    assert np.allclose(wait[c], cancel_t[c] - req_t[c])

    # Money: present exactly for completed trips, conserved to the cent.
    for col in ("fare", "commission", "driver_pay"):
        assert (t[col].is_valid().to_numpy(zero_copy_only=False) == completed).all()
    fare = t["fare"].drop_null().to_pylist()
    comm = t["commission"].drop_null().to_pylist()
    pay = t["driver_pay"].drop_null().to_pylist()
    assert all(f == c + dp for f, c, dp in zip(fare, comm, pay, strict=True))
    assert all(c >= 0 and dp >= 0 for c, dp in zip(comm, pay, strict=True))

    pk = t["pickup_km"].drop_null().to_numpy()
    assert (pk <= p["max_pickup_km"] + 1e-9).all()
    assert (t["pickup_km"].is_valid().to_numpy(zero_copy_only=False) == m).all()

    # Snapshots agree with the trips table: riders in a car at the end of minute x are the
    # trips with pickup <= x < dropoff; cumulative counters count rows.
    minute = s["minute"]
    open_drop = np.where(drop >= 0, drop, p["horizon_min"])
    riding = (
        (pick[k][None, :] <= minute[:, None]) & (minute[:, None] < open_drop[k][None, :])
    ).sum(1)
    assert (riding == s["drivers_on_trip"]).all()
    en_route = (
        (match[m][None, :] <= minute[:, None])
        & (minute[:, None] < np.where(pick >= 0, pick, p["horizon_min"])[m][None, :])
    ).sum(1)
    assert (en_route == s["drivers_en_route"]).all()
    assert s["cumulative_requests"][-1] == n
    assert s["cumulative_completed"][-1] == completed.sum()
    assert s["cumulative_cancelled"][-1] == cancelled.sum()

    # A driver serves one rider at a time: per driver, [match, dropoff) intervals are disjoint.
    drv = t["driver_id"].fill_null(-1).to_numpy()
    order = np.lexsort((match, drv))
    drv_s, start_s, end_s = drv[order], match[order], open_drop[order]
    same = (drv_s[1:] == drv_s[:-1]) & (drv_s[1:] >= 0)
    assert (start_s[1:][same] >= end_s[:-1][same]).all()

    # Metrics are the trips table's window, recomputed independently.
    row = metrics.to_pylist()[0]
    in_window = t["in_window"].to_numpy(zero_copy_only=False)
    assert row["requests"] == int(in_window.sum())
    assert row["completed"] == int((in_window & completed).sum())
    assert row["cancelled"] == int((in_window & cancelled).sum())
    window_fares = pc.filter(t["fare"], pa.array(in_window & completed))
    assert row["gross_bookings"] == sum(window_fares.to_pylist(), Decimal(0))
    assert row["gross_bookings"] == row["platform_revenue"] + sum(
        pc.filter(t["driver_pay"], pa.array(in_window & completed)).to_pylist(), Decimal(0)
    )
    online = p["num_drivers"] - s["drivers_offline"][p["warmup_min"] :]
    assert row["mean_online_drivers"] == pytest.approx(online.mean())


@pytest.mark.parametrize("params", SCENARIOS, ids=lambda p: ",".join(map(str, p)) or "default")
def test_invariants_hold_across_market_shapes(params: dict[str, int | float]) -> None:
    check_invariants(simulate(params, 3), params)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    num_drivers=st.integers(1, 120),
    num_riders=st.integers(1, 1_500),
    commission_rate=st.floats(0.0, 0.9),
    reservation_wage_spread=st.sampled_from([0.0, 4.0, 20.0]),
    patience_mean_min=st.floats(0.5, 30.0),
    max_pickup_km=st.floats(0.1, 12.0),
    match_interval_s=st.sampled_from([1, 13, 30, 60]),
    surge_max=st.sampled_from([1.0, 2.0]),
    shift_mean_hours=st.sampled_from([0.0, 1.0]),
    seed=st.integers(0, 2**32),
)
def test_invariants_hold_for_random_parameters(
    num_drivers: int,
    num_riders: int,
    commission_rate: float,
    reservation_wage_spread: float,
    patience_mean_min: float,
    max_pickup_km: float,
    match_interval_s: int,
    surge_max: float,
    shift_mean_hours: float,
    seed: int,
) -> None:
    params: dict[str, int | float] = {
        "num_drivers": num_drivers,
        "num_riders": num_riders,
        "commission_rate": commission_rate,
        "reservation_wage_spread": reservation_wage_spread,
        "patience_mean_min": patience_mean_min,
        "max_pickup_km": max_pickup_km,
        "match_interval_s": match_interval_s,
        "surge_max": surge_max,
        "shift_mean_hours": shift_mean_hours,
        "horizon_min": 150,
        "warmup_min": 30,
    }
    check_invariants(simulate(params, seed), params)


def test_no_unbounded_queue_when_drivers_are_scarce() -> None:
    """Patience caps the queue, so the second half of a long run looks like the first."""
    params = {"num_drivers": 15, "num_riders": 2_000, "horizon_min": 960, "warmup_min": 120}
    snaps = simulate(params, 11).snapshots
    waiting = snaps.column("riders_waiting").to_numpy()[120:]
    first, second = waiting[: waiting.size // 2].mean(), waiting[waiting.size // 2 :].mean()
    assert second < 1.3 * first
    assert waiting.max() < 200


def test_window_metrics_do_not_depend_on_horizon() -> None:
    """Past warm-up, a longer run measures the same market (means over a few seeds)."""
    short = {"horizon_min": 360, "warmup_min": 120}
    long = {"horizon_min": 960, "warmup_min": 120}

    def mean_of(params: dict[str, int], name: str) -> float:
        return float(np.mean([simulate(params, s).metrics[name][0].as_py() for s in range(4)]))

    for name, tol in (("wait_mean_min", 0.12), ("utilisation", 0.08), ("completion_rate", 0.03)):
        assert mean_of(long, name) == pytest.approx(mean_of(short, name), rel=tol), name
