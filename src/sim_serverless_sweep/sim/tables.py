"""Turn the raw arrays of one run into the three Arrow tables (see schemas.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sim_serverless_sweep.sim.params import ParamValue
from sim_serverless_sweep.sim.schemas import (
    METRICS_SCHEMA,
    MONEY,
    SNAPSHOTS_SCHEMA,
    TRIPS_SCHEMA,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

STATUSES = ("completed", "cancelled", "in_progress")


@dataclass(slots=True)
class Outcomes:
    """What happened to every candidate request, at exact times in minutes; NaN / -1 =
    not reached. Pickup and drop-off times are set at match and may lie past the horizon.
    """

    accepted: BoolArray
    match_at: FloatArray
    pickup_at: FloatArray
    dropoff_at: FloatArray
    cancel_at: FloatArray
    driver_of: IntArray
    pickup_km: FloatArray
    quoted_eta: FloatArray
    surge: FloatArray
    fare_cents: IntArray
    commission_cents: IntArray
    pay_cents: IntArray

    @classmethod
    def none(cls, n: int) -> Outcomes:
        return cls(
            accepted=np.zeros(n, dtype=bool),
            match_at=np.full(n, np.nan),
            pickup_at=np.full(n, np.nan),
            dropoff_at=np.full(n, np.nan),
            cancel_at=np.full(n, np.nan),
            driver_of=np.full(n, -1, dtype=np.int64),
            pickup_km=np.full(n, np.nan),
            quoted_eta=np.full(n, np.nan),
            surge=np.ones(n),
            fare_cents=np.zeros(n, dtype=np.int64),
            commission_cents=np.zeros(n, dtype=np.int64),
            pay_cents=np.zeros(n, dtype=np.int64),
        )


@dataclass(frozen=True, slots=True)
class RunArrays:
    """Everything the tables are built from, per candidate request unless noted."""

    params: dict[str, ParamValue]
    warmup: int
    horizon: int
    accepted: IntArray  # candidate indices that became requests, in request order
    rider: IntArray
    req_time: FloatArray
    out: Outcomes
    trip_km: FloatArray
    ends: tuple[FloatArray, FloatArray, FloatArray, FloatArray]  # origin x, y; destination x, y
    n_drivers: int
    online: IntArray  # online drivers at the end of each minute
    reposition_km_at: FloatArray  # repositioning km started per minute (net of refunds)
    offers_at: IntArray  # offers to drivers per minute
    declines_at: IntArray  # offers declined per minute
    wages: FloatArray  # reservation wage of every driver of the pool
    active_drivers: int  # drivers online at some whole minute of the window
    marginal_wages: FloatArray  # 90th-percentile wage of online drivers, sampled in window


@dataclass(frozen=True, slots=True)
class Requested:
    """The accepted requests' times, with times at or past the horizon as not reached."""

    req: FloatArray
    match: FloatArray
    pickup: FloatArray
    dropoff: FloatArray
    cancel: FloatArray

    @classmethod
    def of(cls, run: RunArrays) -> Requested:
        a, h = run.accepted, float(run.horizon)

        def before_end(x: FloatArray) -> FloatArray:
            return np.where(x < h, x, np.nan)

        return cls(
            req=run.req_time[a],
            match=run.out.match_at[a],
            pickup=before_end(run.out.pickup_at[a]),
            dropoff=before_end(run.out.dropoff_at[a]),
            cancel=run.out.cancel_at[a],
        )


def _minute(x: FloatArray) -> IntArray:
    """Minute (snapshot step) of each time; -1 where never."""
    return np.where(np.isnan(x), -1, np.floor(np.nan_to_num(x, nan=-1.0))).astype(np.int64)


def _validity(valid: BoolArray) -> pa.Buffer | None:
    if bool(valid.all()):
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def money_array(cents: IntArray, valid: BoolArray) -> pa.Array:
    """decimal128(12, 2) from integer cents without going through Python Decimals.

    The storage of a decimal128 value is its unscaled integer as 16 little-endian bytes:
    the low word is the cents, the high word their sign extension. Null slots hold 0.
    """
    cents = np.where(valid, cents, 0).astype(np.int64)
    words = np.empty((cents.size, 2), dtype="<i8")
    words[:, 0] = cents
    words[:, 1] = cents >> 63
    n_null = int(cents.size - np.count_nonzero(valid))
    return pa.Array.from_buffers(
        MONEY, cents.size, [_validity(valid), pa.py_buffer(words)], null_count=n_null
    )


_NUMPY_TYPES: dict[pa.DataType, type[np.generic]] = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float64(): np.float64,
}


def column(
    values: npt.NDArray[Any], type_: pa.DataType, valid: BoolArray | None = None
) -> pa.Array:
    """Arrow array over a NumPy buffer (null where not valid).

    Built from buffers: several times cheaper than pa.array() on the small arrays of a
    point, which pays per-call type and masked-array checks. Zero-copy when `values`
    already has the right dtype, so callers must not modify it afterwards.
    """
    if pa.types.is_boolean(type_):
        data = pa.py_buffer(np.packbits(values.astype(np.bool_), bitorder="little"))
    else:
        data = pa.py_buffer(np.ascontiguousarray(values, dtype=_NUMPY_TYPES[type_]))
    if valid is None:
        return pa.Array.from_buffers(type_, values.size, [None, data], null_count=0)
    n_null = int(values.size - np.count_nonzero(valid))
    return pa.Array.from_buffers(type_, values.size, [_validity(valid), data], null_count=n_null)


def _labels(codes: npt.NDArray[np.int8], labels: tuple[str, ...]) -> pa.Array:
    """String array of labels[code] built from buffers.

    Avoids DictionaryArray casts, which import pyarrow.compute (~80 ms per worker).
    """
    encoded = [label.encode() for label in labels]
    width = max(len(b) for b in encoded)
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for row, label in enumerate(encoded):
        table[row, : len(label)] = np.frombuffer(label, dtype=np.uint8)
    lengths = np.array([len(b) for b in encoded], dtype=np.int32)[codes]
    offsets = np.zeros(codes.size + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = table[codes][np.arange(width) < lengths[:, None]]
    return pa.Array.from_buffers(
        pa.string(), codes.size, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def build_trips(run: RunArrays) -> pa.Table:
    a = run.accepted
    n = a.size
    t = Requested.of(run)
    matched = ~np.isnan(t.match)
    picked = ~np.isnan(t.pickup)
    done = ~np.isnan(t.dropoff)
    cancelled = ~np.isnan(t.cancel)
    status = np.where(done, 0, np.where(cancelled, 1, 2)).astype(np.int8)
    wait = np.where(picked, t.pickup - t.req, t.cancel - t.req)
    out = run.out
    columns = [
        column(np.arange(n), pa.int64()),
        column(run.rider[a], pa.int64()),
        column(out.driver_of[a], pa.int64(), matched),
        column(_minute(t.req), pa.int32()),
        column(_minute(t.match), pa.int32(), matched),
        column(_minute(t.pickup), pa.int32(), picked),
        column(_minute(t.dropoff), pa.int32(), done),
        _labels(status, STATUSES),
        column(np.nan_to_num(wait), pa.float64(), picked | cancelled),
        column(np.nan_to_num(out.pickup_km[a]), pa.float64(), matched),
        column(run.trip_km[a], pa.float64()),
        money_array(out.fare_cents[a], done),
        money_array(out.commission_cents[a], done),
        money_array(out.pay_cents[a], done),
        column(t.req >= run.warmup, pa.bool_()),
        column(t.req, pa.float64()),
        column(np.nan_to_num(t.match), pa.float64(), matched),
        column(np.nan_to_num(t.pickup), pa.float64(), picked),
        column(np.nan_to_num(t.dropoff), pa.float64(), done),
        column(np.nan_to_num(t.cancel), pa.float64(), cancelled),
        column(out.quoted_eta[a], pa.float64()),
        *(column(v[a], pa.float64()) for v in run.ends),
        column(out.surge[a], pa.float64()),
    ]
    return pa.Table.from_arrays(columns, schema=TRIPS_SCHEMA)


def _count_between(start: IntArray, end: IntArray, horizon: int) -> IntArray:
    """Per minute x, how many intervals have start <= x < end (end -1 = open)."""
    has = start >= 0
    end = np.where(end >= 0, end, horizon)[has]
    delta = np.bincount(start[has], minlength=horizon + 1)[: horizon + 1]
    delta = delta - np.bincount(np.minimum(end, horizon), minlength=horizon + 1)[: horizon + 1]
    return np.cumsum(delta)[:horizon]


def snapshot_counts(run: RunArrays) -> IntArray:
    """(9, horizon) counts in SNAPSHOTS_SCHEMA order after ``minute``, from exact times.

    The snapshot of minute x is the state just before x + 1: a phase from time a to b is
    counted when floor(a) <= x < floor(b).
    """
    h = run.horizon
    t = Requested.of(run)
    req, match, pickup = _minute(t.req), _minute(t.match), _minute(t.pickup)
    dropoff, cancel = _minute(t.dropoff), _minute(t.cancel)
    en_route = _count_between(match, pickup, h)
    on_trip = _count_between(pickup, dropoff, h)
    resolved = np.where(pickup >= 0, pickup, cancel)
    waiting = _count_between(req, resolved, h)

    def cumulative(minutes: IntArray) -> IntArray:
        return np.cumsum(np.bincount(minutes[minutes >= 0], minlength=h)[:h])

    online = run.online
    return np.stack(
        [
            run.n_drivers - online,
            online - en_route - on_trip,
            en_route,
            on_trip,
            waiting,
            on_trip,
            cumulative(req),
            cumulative(dropoff),
            cumulative(cancel),
        ]
    ).astype(np.int64)


def build_snapshots(run: RunArrays, snap: IntArray) -> pa.Table:
    columns = [column(np.arange(run.horizon), pa.int32())]
    for i, field in enumerate(list(SNAPSHOTS_SCHEMA)[1:]):
        columns.append(column(snap[i], field.type))
    return pa.Table.from_arrays(columns, schema=SNAPSHOTS_SCHEMA)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


# Earnings step of the supply elasticity: drivers willing at E x / this vs E x this.
ELASTICITY_STEP = 1.1


def _supply_elasticity(wages: FloatArray, earnings: float | None) -> float | None:
    """Elasticity of the drivers willing to be online (wage <= E) to earnings E, from the
    pool's wages around the run's earnings: how far a commission change moves supply."""
    if earnings is None or earnings <= 0.0:
        return None
    willing = float(np.count_nonzero(wages <= earnings))
    if willing == 0.0:
        return None
    up = float(np.count_nonzero(wages <= earnings * ELASTICITY_STEP))
    down = float(np.count_nonzero(wages <= earnings / ELASTICITY_STEP))
    return (up - down) / (2.0 * math.log(ELASTICITY_STEP)) / willing


def build_metrics(run: RunArrays, snap: IntArray) -> pa.Table:
    w0, w1 = run.warmup, run.horizon
    cost_per_km = float(run.params["operating_cost_per_km"])
    out = run.out
    t = Requested.of(run)
    a = run.accepted
    in_window = t.req >= w0
    picked = ~np.isnan(t.pickup)
    done = ~np.isnan(t.dropoff)
    # A picked-up rider can no longer cancel, so "served" is resolved at pickup; counting
    # only drop-offs would bias the rate (and waits) by the trips the horizon cuts off.
    served = in_window & picked
    completed = in_window & done
    n_cancelled = int(np.count_nonzero(in_window & ~np.isnan(t.cancel)))
    n_served = int(np.count_nonzero(served))
    waits = t.pickup[served] - t.req[served]
    if waits.size:
        p50, p95 = np.percentile(waits, [50.0, 95.0])
        wait_stats: list[float | None] = [float(waits.mean()), float(p50), float(p95)]
    else:
        wait_stats = [None, None, None]

    window = snap[:, w0:w1]
    offline, en_route, on_trip = window[0], window[2], window[3]
    online_minutes = float(run.n_drivers * (w1 - w0) - offline.sum())

    # Earnings accrue at drop-off; everything dropped off inside the window counts, less the
    # cost of the repositioning moves started in it.
    dropped = done & (t.dropoff >= w0)
    reposition_km = float(run.reposition_km_at[w0:w1].sum())
    net = (
        float(out.pay_cents[a][dropped].sum()) / 100.0
        - cost_per_km * float((out.pickup_km[a][dropped] + run.trip_km[a][dropped]).sum())
        - cost_per_km * reposition_km
    )
    # Little's law: a phase of d minutes is counted in d snapshots on average (it starts
    # at a uniform point of its minute), so the ratios differ from 1 by sampling noise and
    # by phases straddling the window edges.
    trip_minutes = float((t.dropoff[dropped] - t.pickup[dropped]).sum())
    picked_in = picked & (t.pickup >= w0)
    pickup_minutes = float((t.pickup[picked_in] - t.match[picked_in]).sum())
    fares = out.fare_cents[a][completed]
    offers = int(run.offers_at[w0:w1].sum())
    online_hours = online_minutes / 60.0
    earnings = _ratio(net, online_hours)
    marginal = run.marginal_wages[~np.isnan(run.marginal_wages)]
    marginal_wage = float(marginal.mean()) if marginal.size else None
    n_pool = run.wages.size

    row: dict[str, object] = {
        "window_start_minute": w0,
        "window_end_minute": w1,
        "requests": int(np.count_nonzero(in_window)),
        "completed": int(np.count_nonzero(completed)),
        "served": n_served,
        "cancelled": n_cancelled,
        "completion_rate": _ratio(n_served, n_served + n_cancelled),
        "wait_mean_min": wait_stats[0],
        "wait_p50_min": wait_stats[1],
        "wait_p95_min": wait_stats[2],
        "mean_online_drivers": online_minutes / (w1 - w0),
        "utilisation": _ratio(float(on_trip.sum()), online_minutes),
        "driver_net_hourly_earnings": _ratio(net, online_minutes / 60.0),
        "gross_bookings": Decimal(int(fares.sum())).scaleb(-2),
        "platform_revenue": Decimal(int(out.commission_cents[a][completed].sum())).scaleb(-2),
        "on_trip_identity_ratio": _ratio(float(on_trip.sum()), trip_minutes),
        "en_route_identity_ratio": _ratio(float(en_route.sum()), pickup_minutes),
        "reposition_km": reposition_km,
        "mean_surge_multiplier": float(out.surge[a][in_window].mean()) if in_window.any() else None,
        "acceptance_rate": _ratio(offers - int(run.declines_at[w0:w1].sum()), offers),
        "trips_per_driver_hour": _ratio(float(np.count_nonzero(dropped)), online_hours),
        "pool_online_share": online_minutes / (w1 - w0) / n_pool,
        "active_drivers": run.active_drivers,
        "online_hours_per_active_driver": _ratio(online_hours, run.active_drivers),
        "marginal_wage": marginal_wage,
        "marginal_wage_percentile": (
            float(np.count_nonzero(run.wages <= marginal_wage)) / n_pool
            if marginal_wage is not None
            else None
        ),
        "supply_elasticity": _supply_elasticity(run.wages, earnings),
    }
    return pa.Table.from_pylist([row], schema=METRICS_SCHEMA)
