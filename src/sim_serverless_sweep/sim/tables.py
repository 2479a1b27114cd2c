"""Turn the raw arrays of one run into the three Arrow tables (see schemas.py)."""

from __future__ import annotations

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
    """What happened to every candidate request; -1 / NaN = not reached."""

    accepted: BoolArray
    match_at: IntArray
    pickup_at: IntArray
    dropoff_at: IntArray
    cancel_at: IntArray
    driver_of: IntArray
    pickup_km: FloatArray

    @classmethod
    def none(cls, n: int) -> Outcomes:
        return cls(
            accepted=np.zeros(n, dtype=bool),
            match_at=np.full(n, -1, dtype=np.int64),
            pickup_at=np.full(n, -1, dtype=np.int64),
            dropoff_at=np.full(n, -1, dtype=np.int64),
            cancel_at=np.full(n, -1, dtype=np.int64),
            driver_of=np.full(n, -1, dtype=np.int64),
            pickup_km=np.full(n, np.nan),
        )


@dataclass(frozen=True, slots=True)
class RunArrays:
    """Everything the tables are built from, per candidate request unless noted."""

    params: dict[str, ParamValue]
    warmup: int
    horizon: int
    accepted: IntArray  # candidate indices that became requests, in request order
    rider: IntArray
    req_minute: IntArray
    out: Outcomes
    trip_km: FloatArray
    fare_cents: IntArray
    commission_cents: IntArray
    pay_cents: IntArray
    snap: IntArray  # (9, horizon) counts in SNAPSHOTS_SCHEMA order after `minute`


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
    match_at = run.out.match_at[a]
    pickup_at = run.out.pickup_at[a]
    dropoff_at = run.out.dropoff_at[a]
    cancel_at = run.out.cancel_at[a]
    req_minute = run.req_minute[a]
    matched = match_at >= 0
    picked = pickup_at >= 0
    done = dropoff_at >= 0
    cancelled = cancel_at >= 0
    status = np.where(done, 0, np.where(cancelled, 1, 2)).astype(np.int8)
    wait = np.where(picked, pickup_at - req_minute, cancel_at - req_minute).astype(np.float64)
    status_arr = _labels(status, STATUSES)
    columns = [
        column(np.arange(n), pa.int64()),
        column(run.rider[a], pa.int64()),
        column(run.out.driver_of[a], pa.int64(), matched),
        column(req_minute, pa.int32()),
        column(match_at, pa.int32(), matched),
        column(pickup_at, pa.int32(), picked),
        column(dropoff_at, pa.int32(), done),
        status_arr,
        column(wait, pa.float64(), picked | cancelled),
        column(run.out.pickup_km[a], pa.float64(), matched),
        column(run.trip_km[a], pa.float64()),
        money_array(run.fare_cents[a], done),
        money_array(run.commission_cents[a], done),
        money_array(run.pay_cents[a], done),
        column(req_minute >= run.warmup, pa.bool_()),
    ]
    return pa.Table.from_arrays(columns, schema=TRIPS_SCHEMA)


def build_snapshots(run: RunArrays) -> pa.Table:
    columns = [column(np.arange(run.horizon), pa.int32())]
    for i, field in enumerate(list(SNAPSHOTS_SCHEMA)[1:]):
        columns.append(column(run.snap[i], field.type))
    return pa.Table.from_arrays(columns, schema=SNAPSHOTS_SCHEMA)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def build_metrics(run: RunArrays) -> pa.Table:
    w0, w1 = run.warmup, run.horizon
    n_drivers = int(run.params["num_drivers"])
    cost_per_km = float(run.params["operating_cost_per_km"])

    a = run.accepted
    in_window = a[run.req_minute[a] >= w0]
    completed = in_window[run.out.dropoff_at[in_window] >= 0]
    # A picked-up rider can no longer cancel, so "served" is resolved at pickup; counting
    # only drop-offs would bias the rate (and waits) by the trips the horizon cuts off.
    served = in_window[run.out.pickup_at[in_window] >= 0]
    n_cancelled = int(np.count_nonzero(run.out.cancel_at[in_window] >= 0))
    resolved = served.size + n_cancelled
    waits = (run.out.pickup_at[served] - run.req_minute[served]).astype(np.float64)
    if waits.size:
        p50, p95 = np.percentile(waits, [50.0, 95.0])
        wait_stats: list[float | None] = [float(waits.mean()), float(p50), float(p95)]
    else:
        wait_stats = [None, None, None]

    snap = run.snap[:, w0:w1]
    offline, en_route, on_trip = snap[0], snap[2], snap[3]
    online_minutes = float(n_drivers * (w1 - w0) - offline.sum())

    # Earnings accrue at drop-off; everything dropped off inside the window counts.
    dropped = a[(run.out.dropoff_at[a] >= w0)]
    net = float(run.pay_cents[dropped].sum()) / 100.0 - cost_per_km * float(
        (run.out.pickup_km[dropped] + run.trip_km[dropped]).sum()
    )
    # Little's law in discrete time: a trip of d minutes is on-trip in exactly d snapshots,
    # so the ratios differ from 1 only by trips straddling the window edges.
    trip_minutes = float((run.out.dropoff_at[dropped] - run.out.pickup_at[dropped]).sum())
    picked = a[run.out.pickup_at[a] >= w0]
    pickup_minutes = float((run.out.pickup_at[picked] - run.out.match_at[picked]).sum())

    row: dict[str, object] = {
        "window_start_minute": w0,
        "window_end_minute": w1,
        "requests": int(in_window.size),
        "completed": int(completed.size),
        "served": int(served.size),
        "cancelled": n_cancelled,
        "completion_rate": _ratio(served.size, resolved),
        "wait_mean_min": wait_stats[0],
        "wait_p50_min": wait_stats[1],
        "wait_p95_min": wait_stats[2],
        "mean_online_drivers": online_minutes / (w1 - w0),
        "utilisation": _ratio(float(on_trip.sum()), online_minutes),
        "driver_net_hourly_earnings": _ratio(net, online_minutes / 60.0),
        "gross_bookings": Decimal(int(run.fare_cents[completed].sum())).scaleb(-2),
        "platform_revenue": Decimal(int(run.commission_cents[completed].sum())).scaleb(-2),
        "on_trip_identity_ratio": _ratio(float(on_trip.sum()), trip_minutes),
        "en_route_identity_ratio": _ratio(float(en_route.sum()), pickup_minutes),
    }
    return pa.Table.from_pylist([row], schema=METRICS_SCHEMA)
