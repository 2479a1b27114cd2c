"""Ride-hailing marketplace in continuous time with batched matching (model v2).

Requests, pickups and drop-offs happen at exact (fractional) minutes. Decisions are taken
at matching *rounds*, every ``match_interval_s`` seconds at the middle of each interval
(docs/model.md, "Timing"). At a round at time ``e``, one phase function each:

1. ``_cancel``: waiting requests whose patience ran out before ``e`` leave (at that time);
2. ``_supply_minute`` for every whole minute reached: the earnings signal is updated,
   shifts end, drivers review being online (supply section) and surplus idle drivers start
   repositioning (repositioning section);
3. ``_dispatch``: waiting requests are matched to available drivers, nearest pair first
   (matching section); a matched driver's pickup and drop-off times follow from distance
   and speed, so phases need no per-round bookkeeping; then the surge multiplier;
4. ``_arrive``: candidate requests up to the next round see their own quote (fare and the
   pickup ETA from the nearest available driver) and become requests or not (demand and
   pricing sections).

Snapshot counts (per minute) are rebuilt after the loop from the exact times.

All randomness comes from generators derived from ``seed``: demand (every candidate
request, drawn before the loop in fixed blocks, so a longer horizon extends the same
stream and every parameter point sees the same candidates), supply (wages, initial fleet,
review clocks), repositioning and shift lengths.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sim_serverless_sweep.sim.params import (
    MAX_PRICE_MULTIPLIER,
    MEAN_DISTANCE_UNIT_SQUARE,
    ParamValue,
    expected_fare,
    price_multiplier,
    resolve_params,
)
from sim_serverless_sweep.sim.tables import (
    Outcomes,
    RunArrays,
    build_metrics,
    build_snapshots,
    build_trips,
    snapshot_counts,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

NEVER = np.inf

# Copied slices of these are cheaper than np.ones for the small arrays of the loop.
_ONES = np.ones(4096)
_TRUE = np.ones(4096, dtype=bool)


def _all_true(n: int) -> BoolArray:
    """A fresh all-True mask of length ``n``."""
    return _TRUE[:n].copy() if n <= _TRUE.size else np.ones(n, dtype=bool)


@dataclass(frozen=True, slots=True)
class SimResult:
    """Tables of one run: one row per request, per minute, and one metrics row."""

    trips: pa.Table
    snapshots: pa.Table
    metrics: pa.Table


# ========== matching ===================================================================

# Below this many request x driver pairs the dense matrix is cheapest.
DENSE_PAIRS = 32_768
# Target idle drivers per grid cell of the sparse matcher (3 x 3 cells are searched).
DRIVERS_PER_CELL = 2.0
MAX_GRID = 128


def _empty_match() -> tuple[IntArray, IntArray, FloatArray]:
    empty = np.empty(0, dtype=np.int64)
    return empty, empty, np.empty(0)


def match_dense(
    ox: FloatArray,
    oy: FloatArray,
    dx: FloatArray,
    dy: FloatArray,
    max_km: float,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Greedy nearest-first matching of requests (o) to drivers (d) within ``max_km``.

    Returns (request positions, driver positions, distances). Equivalent to sorting all
    pairs by (squared distance, request, driver) and taking each pair whose request and
    driver are both still free, but done in vectorised rounds: a pair that is the first for
    its request *and* for its driver among those left is taken by that greedy scan too,
    and every round takes at least the globally first pair. Ties go to the lower index
    (argmin), so results are exact and deterministic.
    """
    if not ox.size or not dx.size:
        return _empty_match()
    d2 = np.subtract.outer(ox, dx)
    d2 *= d2
    ddy = np.subtract.outer(oy, dy)
    ddy *= ddy
    d2 += ddy
    return _dense_rounds(d2, max_km * max_km)


def _dense_rounds(d2: FloatArray, limit: float) -> tuple[IntArray, IntArray, FloatArray]:
    n_r = d2.shape[0]
    if n_r == 1:
        # One request: its nearest driver, if in reach (the first of equals, as argmin).
        c1 = int(d2[0].argmin())
        d1 = d2[0, c1]
        if d1 <= limit:
            return np.zeros(1, dtype=np.int64), np.array([c1]), np.sqrt(d2[0, c1 : c1 + 1])
        return _empty_match()
    at = np.arange(n_r)
    rows = at
    out_r: list[IntArray] = []
    out_c: list[IntArray] = []
    out_d: list[FloatArray] = []
    while True:
        best_c = d2.argmin(axis=1)
        best_d = d2[at, best_c]
        # Only the columns some request wants matter: W x W instead of W x I.
        mutual = d2[:, best_c].argmin(axis=0) == at
        reach = best_d <= limit
        r = (mutual & reach).nonzero()[0]
        if not r.size:
            break
        if not out_r and r.size == at.size:
            # Every request gets its nearest driver at once (the usual case).
            return at, best_c, np.sqrt(best_d)
        c = best_c[r]
        out_r.append(rows[r])
        out_c.append(c)
        out_d.append(best_d[r])
        if r.size == at.size:
            break
        # Requests that lost a conflict go again on a matrix of just their rows, with the
        # taken drivers masked; unreachable ones can never match and drop out.
        left = (reach & ~mutual).nonzero()[0]
        if not left.size:
            break
        d2 = d2[left]
        d2[:, c] = np.inf
        rows = rows[left]
        at = np.arange(left.size)
    if not out_r:
        return _empty_match()
    if len(out_r) == 1:
        return out_r[0], out_c[0], np.sqrt(out_d[0])
    return np.concatenate(out_r), np.concatenate(out_c), np.sqrt(np.concatenate(out_d))


@dataclass(frozen=True, slots=True)
class Grid:
    """Points bucketed into square cells of side ``cell`` (row-major cell ids)."""

    cell: float
    g: int
    order: IntArray  # point indices sorted by cell
    start: IntArray  # points of cell c are order[start[c]:start[c + 1]]

    @classmethod
    def of(cls, x: FloatArray, y: FloatArray, side: float, cell: float) -> Grid:
        g = int(min(MAX_GRID, max(1, side // cell)))
        cell = side / g
        cid = _cell_ids(x, y, cell, g)
        order = np.argsort(_small_keys(cid, g * g), kind="stable")
        start = np.zeros(g * g + 1, dtype=np.int64)
        np.cumsum(np.bincount(cid, minlength=g * g), out=start[1:])
        return cls(cell, g, order, start)

    def near_pairs(self, qx: FloatArray, qy: FloatArray) -> tuple[IntArray, IntArray]:
        """All (query, point) pairs whose point lies in the 3 x 3 cells around the query's.

        Those include every point within ``cell`` of the query (a closer point cannot be
        two cells away).
        """
        g = self.g
        cx = np.minimum((qx / self.cell).astype(np.int64), g - 1)
        cy = np.minimum((qy / self.cell).astype(np.int64), g - 1)
        ox = (cx[:, None] + _OFFSETS[0]).ravel()
        oy = (cy[:, None] + _OFFSETS[1]).ravel()
        inside = (ox >= 0) & (ox < g) & (oy >= 0) & (oy < g)
        cells = np.where(inside, ox * g + oy, 0)
        lo = self.start[cells]
        counts = np.where(inside, self.start[cells + 1] - lo, 0)
        total = int(counts.sum())
        if not total:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        query = np.repeat(np.arange(qx.size * 9) // 9, counts)
        seg_start = np.cumsum(counts) - counts
        pos = np.arange(total) - np.repeat(seg_start - lo, counts)
        return query, self.order[pos]


_OFFSETS = (
    np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1], dtype=np.int64),
    np.array([-1, 0, 1, -1, 0, 1, -1, 0, 1], dtype=np.int64),
)


def _cell_ids(x: FloatArray, y: FloatArray, cell: float, g: int) -> IntArray:
    cx = np.minimum((x / cell).astype(np.int64), g - 1)
    cy = np.minimum((y / cell).astype(np.int64), g - 1)
    return cx * g + cy


def _small_keys(key: IntArray, n: int) -> npt.NDArray[np.integer[Any]]:
    """Keys in the narrowest integer type: NumPy radix-sorts 16-bit keys (stable)."""
    return key.astype(np.int16) if n <= np.iinfo(np.int16).max else key


def _first_of(key: IntArray, n: int) -> BoolArray:
    """Mask of the first occurrence of each key value, in array order."""
    order = np.argsort(_small_keys(key, n), kind="stable")
    ordered = key[order]
    starts = np.ones(key.size, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    first = np.zeros(key.size, dtype=bool)
    first[order[starts]] = True
    return first


def _sparse_rounds(
    r: IntArray, c: IntArray, d2: FloatArray, n_r: int, n_c: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The greedy scan over an explicit pair list, in vectorised rounds.

    Pairs sorted by (squared distance, request, driver) as the literal rule; a pair that is
    the first one of its request and of its driver is taken by the scan (nothing before it
    can take either end), and the first pair overall always is.
    """
    order = np.lexsort((c, r, d2))
    r, c, d2 = r[order], c[order], d2[order]
    out_r: list[IntArray] = []
    out_c: list[IntArray] = []
    out_d: list[FloatArray] = []
    taken_r = np.zeros(n_r, dtype=bool)
    taken_c = np.zeros(n_c, dtype=bool)
    while r.size:
        take = np.flatnonzero(_first_of(r, n_r) & _first_of(c, n_c))
        tr, tc = r[take], c[take]
        out_r.append(tr)
        out_c.append(tc)
        out_d.append(d2[take])
        taken_r[tr] = True
        taken_c[tc] = True
        keep = ~(taken_r[r] | taken_c[c])
        r, c, d2 = r[keep], c[keep], d2[keep]
    if not out_r:
        return _empty_match()
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_d)


def match_greedy(
    ox: FloatArray,
    oy: FloatArray,
    dx: FloatArray,
    dy: FloatArray,
    max_km: float,
    side: float | None = None,
) -> tuple[IntArray, IntArray, FloatArray]:
    """The documented matching rule (see ``match_dense``) without going quadratic.

    Pairs closer than a grid cell all lie in neighbouring cells and come first in the
    greedy order, so phase A runs the scan on just those pairs; whatever is left (requests
    with no free driver within a cell) is matched densely on the left-overs (phase B),
    which continues the same scan over the longer pairs. Same result as the dense rule.
    """
    n_r, n_c = ox.size, dx.size
    if side is None or n_r * n_c <= DENSE_PAIRS:
        return match_dense(ox, oy, dx, dy, max_km)
    grid = Grid.of(dx, dy, side, side * math.sqrt(DRIVERS_PER_CELL / n_c))
    q, c = grid.near_pairs(ox, oy)
    d2 = (ox[q] - dx[c]) ** 2 + (oy[q] - dy[c]) ** 2
    limit = max_km * max_km
    cell2 = grid.cell * grid.cell
    if cell2 >= limit:
        # Every reachable pair lies within a cell: phase A is the whole scan.
        keep = d2 <= limit
        ra, ca, da = _sparse_rounds(q[keep], c[keep], d2[keep], n_r, n_c)
        return ra, ca, np.sqrt(da)
    keep = d2 < cell2
    ra, ca, da = _sparse_rounds(q[keep], c[keep], d2[keep], n_r, n_c)
    free_r = np.ones(n_r, dtype=bool)
    free_r[ra] = False
    free_c = np.ones(n_c, dtype=bool)
    free_c[ca] = False
    left_r, left_c = np.flatnonzero(free_r), np.flatnonzero(free_c)
    rb, cb, db = match_dense(ox[left_r], oy[left_r], dx[left_c], dy[left_c], max_km)
    return (
        np.concatenate((ra, left_r[rb])),
        np.concatenate((ca, left_c[cb])),
        np.concatenate((np.sqrt(da), db)),
    )


def nearest_km(
    qx: FloatArray, qy: FloatArray, dx: FloatArray, dy: FloatArray, side: float
) -> FloatArray:
    """Distance from each query point to its nearest driver (inf when there is none)."""
    if not dx.size:
        return np.full(qx.size, np.inf)
    if qx.size * dx.size <= DENSE_PAIRS:
        d2 = np.subtract.outer(qx, dx)
        d2 *= d2
        ddy = np.subtract.outer(qy, dy)
        ddy *= ddy
        d2 += ddy
        near: FloatArray = np.minimum.reduce(d2, axis=1)
        np.sqrt(near, out=near)
        return near
    grid = Grid.of(dx, dy, side, side * math.sqrt(DRIVERS_PER_CELL / dx.size))
    q, c = grid.near_pairs(qx, qy)
    best = np.full(qx.size, np.inf)
    np.minimum.at(best, q, (qx[q] - dx[c]) ** 2 + (qy[q] - dy[c]) ** 2)
    # Beyond one cell the 3 x 3 block may miss a nearer driver: look again densely.
    far = np.flatnonzero(best >= grid.cell * grid.cell)
    if far.size:
        d2 = np.subtract.outer(qx[far], dx) ** 2 + np.subtract.outer(qy[far], dy) ** 2
        best[far] = d2.min(axis=1)
    return np.asarray(np.sqrt(best), dtype=np.float64)


# ========== pricing ====================================================================


def fare_value(
    p: Mapping[str, ParamValue], trip_km: FloatArray, trip_min: FloatArray
) -> FloatArray:
    """Unsurged fare in currency: base + per km + per (exact) trip minute."""
    return (
        float(p["base_fare"])
        + float(p["per_km_fare"]) * trip_km
        + float(p["per_min_fare"]) * trip_min
    )


def price_response(p: Mapping[str, ParamValue], fare: FloatArray) -> FloatArray:
    """Request-rate multiplier of a quoted fare: (fare / reference_fare)^-e, capped."""
    ratio = np.maximum(fare, 0.01) / float(p["reference_fare"])
    return np.minimum(MAX_PRICE_MULTIPLIER, ratio ** (-float(p["price_elasticity"])))


def split_fare(fare_cents: IntArray, commission_rate: float) -> tuple[IntArray, IntArray]:
    """(commission, driver pay) in cents: commission rounded half to even, pay the rest."""
    commission = np.rint(fare_cents * commission_rate).astype(np.int64)
    return commission, fare_cents - commission


# ========== demand =====================================================================

# Candidate requests are drawn in blocks of whole minutes holding about this many, so a
# longer horizon only appends blocks (the first hours of a 24-hour run are those of an
# 8-hour run) and memory holds one block of raw draws at a time.
DEMAND_BLOCK_DRAWS = 200_000


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate requests that may become requests, in time order.

    Drawn at a rate bounded above (``MAX_PRICE_MULTIPLIER`` x the base rate when riders
    respond to price) and kept only if their uniform draw can still pass the fare test;
    whether they pass the full test (fare and ETA at request time) is decided in the loop.
    """

    time: FloatArray  # exact request time, minutes
    rider: IntArray
    ox: FloatArray
    oy: FloatArray
    tx: FloatArray
    ty: FloatArray
    deadline: FloatArray  # time + patience
    accept_u: FloatArray  # compared with (quoted response) / bound
    trip_km: FloatArray
    trip_min: FloatArray
    fare: FloatArray  # unsurged fare, currency
    price_ok: FloatArray  # price response of the unsurged fare / bound


def demand_bound(p: Mapping[str, ParamValue]) -> float:
    """Upper bound of any rider's price response: the rate candidates are drawn at."""
    return MAX_PRICE_MULTIPLIER if float(p["price_elasticity"]) > 0.0 else 1.0


def daily_profile(p: Mapping[str, ParamValue], minutes: FloatArray) -> FloatArray:
    """Request-rate factor at each minute: 1 plus a Gaussian bump per peak, on the
    24-hour clock (``start_hour`` at minute 0). Exactly 1 with both amplitudes 0."""
    factor = np.ones(minutes.size)
    hour = (float(p["start_hour"]) + minutes / 60.0) % 24.0
    width = float(p["peak_width_hours"])
    for peak in ("morning", "evening"):
        amplitude = float(p[f"{peak}_peak_amplitude"])
        if amplitude > 0.0:
            off = np.abs(hour - float(p[f"{peak}_peak_hour"]))
            off = np.minimum(off, 24.0 - off)
            factor += amplitude * np.exp(-0.5 * (off / width) ** 2)
    return factor


def _in_hotspot(
    u: FloatArray, pick: FloatArray, share: float, side: float, size_share: float
) -> FloatArray:
    """Coordinates from uniform draws ``u`` (in [0, side)): those with ``pick < share``
    are squeezed into the central square of side ``size_share x side``."""
    if share <= 0.0:
        return u
    hot = side * size_share
    return np.where(pick < share, (side - hot) / 2.0 + u * size_share, u)


def draw_candidates(p: Mapping[str, ParamValue], rng: np.random.Generator) -> Candidates:
    """Every candidate request of the run, drawn up front block by block."""
    horizon = int(p["horizon_min"])
    side = float(p["city_size_km"])
    km_per_min = float(p["speed_kmh"]) / 60.0
    bound = demand_bound(p)
    rate = float(p["num_riders"]) * float(p["request_rate_per_hour"]) / 60.0 * bound
    blocks: list[tuple[FloatArray, ...]] = []
    riders: list[IntArray] = []
    peak = 1.0 + float(p["morning_peak_amplitude"]) + float(p["evening_peak_amplitude"])
    # Block length depends on rates only, so block boundaries do not move with the horizon.
    block = int(min(60, max(1, DEMAND_BLOCK_DRAWS // max(rate * peak, 1.0))))
    n_blocks = -(-horizon // block)
    profile = daily_profile(p, np.arange(n_blocks * block, dtype=np.float64) + 0.5)
    hot_o, hot_d = float(p["hotspot_share"]), float(p["hotspot_destination_share"])
    size_share = float(p["hotspot_size_share"])
    for b0 in range(0, horizon, block):
        n_min = min(block, horizon - b0)
        counts = rng.poisson(rate * profile[b0 : b0 + block])[:n_min]
        n = int(counts.sum())
        time = np.repeat(np.arange(b0, b0 + n_min, dtype=np.float64), counts) + rng.random(n)
        rider = rng.integers(0, int(p["num_riders"]), n, dtype=np.int64)
        ends = rng.random((4, n)) * side
        patience = rng.exponential(float(p["patience_mean_min"]), n)
        accept_u = rng.random(n)
        picks = rng.random((2, n))
        for i, share in ((0, hot_o), (1, hot_o), (2, hot_d), (3, hot_d)):
            ends[i] = _in_hotspot(ends[i], picks[i // 2], share, side, size_share)
        trip_km = np.hypot(ends[2] - ends[0], ends[3] - ends[1])
        trip_min = trip_km / km_per_min
        fare = fare_value(p, trip_km, trip_min)
        price_ok = price_response(p, fare) / bound
        keep = np.flatnonzero(accept_u < price_ok)
        keep = keep[np.argsort(time[keep], kind="stable")]
        blocks.append(
            (
                time[keep],
                ends[0][keep],
                ends[1][keep],
                ends[2][keep],
                ends[3][keep],
                time[keep] + patience[keep],
                accept_u[keep],
                trip_km[keep],
                trip_min[keep],
                fare[keep],
                price_ok[keep],
            )
        )
        riders.append(rider[keep])
    cols = [np.concatenate(parts) if parts else np.empty(0) for parts in zip(*blocks, strict=True)]
    if not cols:
        cols = [np.empty(0) for _ in range(11)]
    rider_all = np.concatenate(riders) if riders else np.empty(0, dtype=np.int64)
    return Candidates(
        time=cols[0],
        rider=rider_all,
        ox=cols[1],
        oy=cols[2],
        tx=cols[3],
        ty=cols[4],
        deadline=cols[5],
        accept_u=cols[6],
        trip_km=cols[7],
        trip_min=cols[8],
        fare=cols[9],
        price_ok=cols[10],
    )


def wait_response(p: Mapping[str, ParamValue], eta: FloatArray) -> FloatArray:
    """Request-rate multiplier of a quoted pickup ETA: (1 + eta / reference_wait_min)^-e."""
    return np.asarray(
        (1.0 + eta / float(p["reference_wait_min"])) ** (-float(p["wait_elasticity"])),
        dtype=np.float64,
    )


# ========== supply =====================================================================

# Minutes of driver review clocks drawn per generator call.
REVIEW_CHUNK = 64


def draw_wages(rng: np.random.Generator, n: int, mean: float, spread: float) -> FloatArray:
    """Lognormal reservation wages with the given mean and standard deviation.

    Lognormal keeps wages positive; spread 0 (or mean 0) gives one common wage.
    """
    if spread <= 0.0 or mean <= 0.0:
        return np.full(n, mean)
    sigma2 = math.log1p((spread / mean) ** 2)
    return rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2), n)


def warm_start(
    p: Mapping[str, ParamValue], wages: FloatArray, lam: float
) -> tuple[IntArray, float]:
    """Initial online fleet and earnings signal: an a-priori free-entry equilibrium.

    Starting near equilibrium shortens the warm-up; the dynamics then find the real one.
    With the k cheapest drivers online and all ``lam`` requests per minute served, each
    earns E_k = 60 * lam * net_k / k per hour (capped at full utilisation), where net_k is
    the mean fare after commission minus the operating cost of the trip and of a pickup
    from the nearest of k drivers (~0.5 * side / sqrt(k)). Wages sorted ascending rise and
    E_k falls in k, so the k with w_(k) <= E_k form a prefix; take the longest.
    """
    n = wages.size
    if n == 0:
        return np.empty(0, dtype=np.int64), 0.0
    side = float(p["city_size_km"])
    km_per_min = float(p["speed_kmh"]) / 60.0
    mean_km = MEAN_DISTANCE_UNIT_SQUARE * side
    k = np.arange(1, n + 1, dtype=np.float64)
    pickup_km = 0.5 * side / np.sqrt(k)
    net = expected_fare(p) * (1.0 - float(p["commission_rate"])) - float(
        p["operating_cost_per_km"]
    ) * (mean_km + pickup_km)
    busy_min = (mean_km + pickup_km) / km_per_min
    earnings = 60.0 * net / busy_min * np.minimum(1.0, lam * busy_min / k)
    order = np.argsort(wages, kind="stable")
    feasible = int(np.count_nonzero(wages[order] <= earnings))
    return order[:feasible], float(earnings[max(feasible - 1, 0)])


@dataclass(slots=True)
class Fleet:
    """Per-driver state. A driver is online (``online``) or offline; an online driver is
    busy until ``free_at`` (drop-off of the current job) and idle after it. Busy drivers
    who decided to stop are already offline in ``online`` and counted in ``n_leaving``
    until their drop-off.
    """

    wages: FloatArray
    online: BoolArray
    free_at: FloatArray
    # Idle position: moving from (x0, y0) at t0 toward (x1, y1) at speed; at rest when
    # length is 0 (then x0, y0 = x1, y1).
    x0: FloatArray
    y0: FloatArray
    x1: FloatArray
    y1: FloatArray
    t0: FloatArray
    length: FloatArray
    arrive_at: FloatArray  # end of the current repositioning move (-inf: none)
    shift_end: FloatArray = field(default_factory=lambda: np.empty(0))
    rest_until: FloatArray = field(default_factory=lambda: np.empty(0))
    active: BoolArray = field(default_factory=lambda: np.empty(0, dtype=bool))  # in window
    n_online: int = 0
    leave_at: list[float] = field(default_factory=list)  # drop-off times of busy leavers

    def available(self, e: float) -> IntArray:
        """Online drivers without a job at time ``e``."""
        return (self.online & (self.free_at <= e)).nonzero()[0]

    def share_done(self, drv: IntArray, e: float, km_per_min: float) -> FloatArray:
        """The share of their move done by idle drivers ``drv`` at ``e`` (as ``position``)."""
        done = _ONES[: drv.size].copy() if drv.size <= _ONES.size else np.ones(drv.size)
        moving = (self.arrive_at[drv] > e).nonzero()[0]
        if moving.size:
            d = drv[moving]
            done[moving] = (e - self.t0[d]) * km_per_min / self.length[d]
        return done

    def position(
        self, drv: IntArray, e: float, km_per_min: float
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Positions of idle drivers ``drv`` at ``e`` and the share of their move done."""
        done = _ONES[: drv.size].copy() if drv.size <= _ONES.size else np.ones(drv.size)
        x, y = self.x1[drv], self.y1[drv]
        moving = (self.arrive_at[drv] > e).nonzero()[0]
        if moving.size:
            d = drv[moving]
            share = (e - self.t0[d]) * km_per_min / self.length[d]
            done[moving] = share
            x[moving] = self.x0[d] + share * (self.x1[d] - self.x0[d])
            y[moving] = self.y0[d] + share * (self.y1[d] - self.y0[d])
        return x, y, done


def init_fleet(
    p: Mapping[str, ParamValue],
    rng: np.random.Generator,
    lam: float,
    cold_start_share: float | None,
) -> tuple[Fleet, float]:
    """Wages, positions and the minute-0 fleet; returns it with the initial earnings signal."""
    n = int(p["num_drivers"])
    wages = draw_wages(
        rng, n, float(p["reservation_wage_mean"]), float(p["reservation_wage_spread"])
    )
    side = float(p["city_size_km"])
    x = rng.random(n) * side
    y = rng.random(n) * side
    initial_online, initial_earnings = warm_start(p, wages, lam)
    if cold_start_share is not None:
        initial_online = np.flatnonzero(rng.random(n) < cold_start_share)
        initial_earnings = float(p["reservation_wage_mean"])
    online = np.zeros(n, dtype=bool)
    online[initial_online] = True
    fleet = Fleet(
        wages=wages,
        online=online,
        free_at=np.full(n, -NEVER),
        x0=x,
        y0=y,
        x1=x.copy(),
        y1=y.copy(),
        t0=np.zeros(n),
        length=np.zeros(n),
        arrive_at=np.full(n, -NEVER),
        shift_end=np.full(n, NEVER),
        rest_until=np.full(n, -NEVER),
        active=np.zeros(n, dtype=bool),
        n_online=int(online.sum()),
    )
    return fleet, initial_earnings


@dataclass(slots=True)
class ReviewClocks:
    """Poisson review clocks of the drivers, drawn REVIEW_CHUNK minutes at a time."""

    rate: float  # reviews per minute over the whole pool
    n_drivers: int
    start: IntArray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    who: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    u: FloatArray = field(default_factory=lambda: np.empty(0))

    def due(self, t: int, horizon: int, rng: np.random.Generator) -> tuple[IntArray, FloatArray]:
        """Drivers reviewing in minute ``t`` and their uniform draws."""
        if t % REVIEW_CHUNK == 0:
            # Draw the next REVIEW_CHUNK minutes in one go (fewer generator calls; a
            # longer horizon only appends chunks).
            self.start = np.zeros(REVIEW_CHUNK + 1, dtype=np.int64)
            np.cumsum(rng.poisson(self.rate, REVIEW_CHUNK), out=self.start[1:])
            self.who = rng.integers(0, self.n_drivers, int(self.start[-1]))
            self.u = rng.random(int(self.start[-1]))
        lo = int(self.start[t % REVIEW_CHUNK])
        hi = int(self.start[t % REVIEW_CHUNK + 1])
        return self.who[lo:hi], self.u[lo:hi]


def review(fleet: Fleet, who: IntArray, u: FloatArray, earnings: float, e: float) -> IntArray:
    """Entry and exit of the reviewing drivers ``who``; returns the drivers who joined.

    The hazard is kappa x the log earnings gap |ln(E / w)| (capped at 1), the same in both
    directions. Entry is further scaled by online / offline drivers, so the entry *flow* is
    proportional to the online fleet as exit is: with one common wage the flows then
    balance at the same fleet whatever the size of the pool of potential drivers.
    """
    if not who.size:
        return who
    if len(set(who.tolist())) < who.size:
        who, first = np.unique(who, return_index=True)
        u = u[first]
    w = fleet.wages[who]
    with np.errstate(divide="ignore"):
        gap = np.log(earnings) - np.log(w) if earnings > 0.0 else np.full(who.size, -np.inf)
    gap = np.clip(gap, -1.0, 1.0)
    n_offline = fleet.wages.size - fleet.n_online - len(fleet.leave_at)
    scale = max(fleet.n_online, 1) / n_offline if n_offline > 0 else 1.0
    # Offline, not finishing a last job, and rested.
    offline_now = ~fleet.online[who] & (fleet.free_at[who] <= e) & (fleet.rest_until[who] <= e)
    join: IntArray = who[offline_now & (u < np.minimum(1.0, gap * scale))]
    if join.size:
        fleet.online[join] = True
        fleet.n_online += join.size
    leave = who[fleet.online[who] & (u < -gap)]
    if leave.size:
        log_off(fleet, leave, e)
    return join


def log_off(fleet: Fleet, drivers: IntArray, e: float) -> None:
    """Online ``drivers`` stop: idle ones now, busy ones at their drop-off."""
    fleet.online[drivers] = False
    fleet.n_online -= drivers.size
    fleet.shift_end[drivers] = NEVER
    busy = fleet.free_at[drivers] > e
    fleet.leave_at.extend(fleet.free_at[drivers][busy].tolist())


# Shape of the gamma distribution of shift lengths (coefficient of variation 1 / sqrt(4)).
SHIFT_SHAPE = 4.0


def start_shifts(
    fleet: Fleet, drivers: IntArray, e: float, mean_min: float, rng: np.random.Generator
) -> None:
    """Drivers going online get a shift length; at its end they log off and rest."""
    if mean_min > 0.0 and drivers.size:
        fleet.shift_end[drivers] = e + rng.gamma(SHIFT_SHAPE, mean_min / SHIFT_SHAPE, drivers.size)


def end_shifts(fleet: Fleet, e: float, rest_mean_min: float, rng: np.random.Generator) -> None:
    """Drivers whose shift is over log off (busy ones at drop-off) and rest."""
    over = np.flatnonzero(fleet.online & (fleet.shift_end <= e))
    if over.size:
        rest_from = np.maximum(fleet.free_at[over], e)
        log_off(fleet, over, e)
        fleet.rest_until[over] = rest_from + rng.exponential(rest_mean_min, over.size)


# ========== repositioning ==============================================================

# Cells per side of the grid idle drivers compare with expected demand.
REPOSITION_GRID = 8
# Minutes between repositioning decisions (the rate per minute is scaled to match).
REPOSITION_EVERY_MIN = 5


def demand_share(p: Mapping[str, ParamValue]) -> FloatArray:
    """Expected share of request origins in each repositioning cell (row-major): the
    uniform part plus the hotspot's, by the overlap of each cell with the hotspot square."""
    g = REPOSITION_GRID
    share = float(p["hotspot_share"])
    size = float(p["hotspot_size_share"])
    edges = np.linspace(0.0, 1.0, g + 1)
    lo, hi = (1.0 - size) / 2.0, (1.0 + size) / 2.0
    overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None) / size
    return (1.0 - share) / (g * g) + share * np.outer(overlap, overlap).ravel()


def reposition(
    fleet: Fleet,
    e: float,
    rate: float,
    share: FloatArray,
    side: float,
    km_per_min: float,
    rng: np.random.Generator,
) -> float:
    """Surplus idle drivers of each cell start driving to cells short of idle drivers.

    A cell's target is its demand share of the idle drivers; drivers at rest in a cell
    holding more than target + sqrt(target) (noise allowance) leave at ``rate`` per
    surplus driver and minute (``rate`` here is per decision), each to a uniform point of a
    short cell drawn in proportion
    to the shortfall. Returns the km of the moves started (their operating cost is charged
    now; the unused part is refunded if a match interrupts the move).
    """
    idle = fleet.available(e)
    if idle.size < 2:
        return 0.0
    g = REPOSITION_GRID
    cell = side / g
    cid = _cell_ids(fleet.x1[idle], fleet.y1[idle], cell, g)
    count = np.bincount(cid, minlength=g * g).astype(np.float64)
    target = share * idle.size
    surplus = np.maximum(0.0, count - target - np.sqrt(target))
    short = np.maximum(0.0, target - count)
    if not np.count_nonzero(surplus) or not np.count_nonzero(short):
        return 0.0
    at_rest = fleet.share_done(idle, e, km_per_min) >= 1.0
    p_move = np.where(count > 0, rate * surplus / np.maximum(count, 1.0), 0.0)[cid]
    movers = idle[at_rest & (rng.random(idle.size) < p_move)]
    if not movers.size:
        return 0.0
    cum = short.cumsum()
    dest = np.minimum(
        np.searchsorted(cum, rng.random(movers.size) * cum[-1], side="right"), g * g - 1
    )
    jx, jy = rng.random((2, movers.size))
    x1 = (dest // g + jx) * cell
    y1 = (dest % g + jy) * cell
    fleet.x0[movers] = fleet.x1[movers]
    fleet.y0[movers] = fleet.y1[movers]
    fleet.x1[movers] = x1
    fleet.y1[movers] = y1
    fleet.t0[movers] = e
    length = np.hypot(x1 - fleet.x0[movers], y1 - fleet.y0[movers])
    fleet.length[movers] = length
    fleet.arrive_at[movers] = e + length / km_per_min
    return float(np.add.reduce(length))


# ========== the loop ===================================================================


@dataclass(slots=True)
class Requests:
    """Outcomes of the candidate requests, the open queue and the quotes."""

    out: Outcomes
    rider_free_at: FloatArray  # a rider has at most one open request
    waiting: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


@dataclass(slots=True)
class Signals:
    """What drivers react to: EWMAs of online drivers and of net pay per minute.

    ``net_at`` books each trip's net pay at its drop-off minute (known at match) and each
    repositioning move's cost at its start; the signal reads the minute just ended.
    """

    alpha: float  # EWMA weight per minute
    online: float
    net: float
    net_at: FloatArray
    reposition_km_at: FloatArray
    offers_at: IntArray  # offers made to drivers per minute
    declines_at: IntArray  # of which declined
    wait: float = 0.0  # recent mean wait, quoted when no driver is in reach
    surge: float = 1.0  # multiplier quoted to riders now
    open_requests: float = 0.0  # EWMAs behind the surge multiplier
    idle_drivers: float = 0.0
    marginal_wages: list[float] = field(default_factory=list)  # sampled in the window

    def earnings(self) -> float:
        """Recent net earnings per online driver-hour."""
        return 60.0 * self.net / self.online if self.online > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Setup:
    """Resolved parameters the loop uses, as plain floats."""

    p: dict[str, ParamValue]
    horizon: int
    side: float
    km_per_min: float
    max_km: float
    cost_per_km: float
    commission: float
    reposition_rate: float
    interval_min: float
    surge_max: float
    surge_sensitivity: float
    acceptance_share: float
    decline_timeout_min: float
    shift_mean_min: float
    rest_mean_min: float
    warmup: int
    half_interval_min: float  # 0.5 x interval_min
    reference_wait_min: float
    neg_wait_elasticity: float  # -wait_elasticity


def _streams(seed: int | np.random.SeedSequence) -> list[np.random.Generator]:
    """Demand, supply, repositioning and shift-length generators derived from ``seed``.

    Children are built by hand rather than with ``SeedSequence.spawn`` because spawn
    mutates the caller's object: passing the same SeedSequence twice must give the same run.
    """
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        root = np.random.SeedSequence(int(seed))
    else:
        raise TypeError(f"seed must be an int or numpy.random.SeedSequence, not {seed!r}")
    return [
        np.random.default_rng(
            np.random.SeedSequence(
                entropy=root.entropy, spawn_key=(*root.spawn_key, i), pool_size=root.pool_size
            )
        )
        for i in range(4)
    ]


def _rounds(horizon: int, interval_s: int) -> FloatArray:
    """Times (minutes) of the matching rounds, at the middle of each interval.

    At (j + 1/2) x interval, the per-minute snapshots sample phases that start at a round
    at evenly spread offsets, so a phase of d minutes shows in d snapshots on average
    (Little's law holds); every minute holds at least one round.
    """
    half_seconds = np.arange(interval_s, 120 * horizon, 2 * interval_s, dtype=np.int64)
    return np.asarray(half_seconds / 120.0, dtype=np.float64)


def _cancel(e: float, cand: Candidates, req: Requests) -> None:
    """Waiting requests whose patience ran out before ``e`` leave at their deadline."""
    waiting = req.waiting
    if not waiting.size:
        return
    expired = cand.deadline[waiting] < e
    if np.count_nonzero(expired):
        gone = waiting[expired]
        req.out.cancel_at[gone] = cand.deadline[gone]
        req.rider_free_at[cand.rider[gone]] = cand.deadline[gone]
        req.waiting = waiting[~expired]


# Available drivers after a round and their positions, reused for the quotes that follow.
FreeDrivers = tuple[IntArray, FloatArray, FloatArray]


def _free_drivers(e: float, s: Setup, fleet: Fleet) -> FreeDrivers:
    avail = fleet.available(e)
    x, y, _ = fleet.position(avail, e, s.km_per_min)
    return avail, x, y


def _dispatch(
    e: float, s: Setup, fleet: Fleet, cand: Candidates, req: Requests, signals: Signals
) -> FreeDrivers | None:
    """Match waiting requests to available drivers; their job times follow from distance.

    Returns the drivers still available afterwards (None when nothing was looked up)."""
    waiting = req.waiting
    if not waiting.size:
        return None
    avail = fleet.available(e)
    if not avail.size:
        return avail, np.empty(0), np.empty(0)
    x, y, done = fleet.position(avail, e, s.km_per_min)
    r_pos, d_pos, dist = match_greedy(cand.ox[waiting], cand.oy[waiting], x, y, s.max_km, s.side)
    if not r_pos.size:
        return avail, x, y
    left = _all_true(avail.size)
    left[d_pos] = False
    free: FreeDrivers = (avail[left], x[left], y[left])
    job = waiting[r_pos]
    drv = avail[d_pos]
    minute = int(e)
    # A match (or a declined offer) ends a repositioning move: refund the km not driven.
    unused = (1.0 - done[d_pos]) * fleet.length[drv]
    if np.count_nonzero(unused):
        signals.reposition_km_at[minute] -= float(np.add.reduce(unused))
        fleet.x0[drv] = fleet.x1[drv] = x[d_pos]
        fleet.y0[drv] = fleet.y1[drv] = y[d_pos]
        fleet.length[drv] = 0.0
        fleet.arrive_at[drv] = -NEVER
    signals.offers_at[minute] += job.size
    net: FloatArray | None = None
    if s.acceptance_share > 0.0:
        # The offer's net pay (the same sum books the accepted trips' pay below).
        net = req.out.pay_cents[job] / 100.0 - s.cost_per_km * (dist + cand.trip_km[job])
        per_min = net / (dist / s.km_per_min + cand.trip_min[job])
        ok = per_min >= s.acceptance_share * fleet.wages[drv] / 60.0
        if not ok.all():
            # Decliners sit out of matching for a while; the request waits for the next round.
            fleet.free_at[drv[~ok]] = e + s.decline_timeout_min
            signals.declines_at[minute] += int(np.count_nonzero(~ok))
            r_pos, job, drv, dist, net = r_pos[ok], job[ok], drv[ok], dist[ok], net[ok]
            if not job.size:
                return free
    pickup_at = e + dist / s.km_per_min
    dropoff_at = pickup_at + cand.trip_min[job]
    out = req.out
    # Pickup and drop-off times follow from these (filled in after the loop).
    out.match_at[job] = e
    out.driver_of[job] = drv
    out.pickup_km[job] = dist
    fleet.free_at[drv] = dropoff_at
    # Idle again at the destination (at rest: arrive_at is in the past by then).
    fleet.x1[drv] = cand.tx[job]
    fleet.y1[drv] = cand.ty[job]
    req.rider_free_at[cand.rider[job]] = dropoff_at
    if net is None:
        net = out.pay_cents[job] / 100.0 - s.cost_per_km * (dist + cand.trip_km[job])
    np.add.at(signals.net_at, np.minimum(dropoff_at.astype(np.int64), s.horizon), net)
    waits = pickup_at - cand.time[job]
    n = job.size
    mean_wait = float(np.add.reduce(waits)) / n
    signals.wait += (1.0 - (1.0 - signals.alpha) ** n) * (mean_wait - signals.wait)
    if r_pos.size == waiting.size:
        req.waiting = waiting[:0]
    else:
        keep = _all_true(waiting.size)
        keep[r_pos] = False
        req.waiting = waiting[keep]
    return free


def _arrive(
    e: float,
    lo: int,
    hi: int,
    s: Setup,
    fleet: Fleet,
    cand: Candidates,
    req: Requests,
    signals: Signals,
    free: FreeDrivers | None,
) -> None:
    """Candidates ``lo:hi`` (requested before the next round) see their quote and decide.

    The quote is the fare and the pickup ETA: distance from the nearest available driver
    at speed plus half a matching interval (the mean wait for the next round); with no
    driver in reach, the recent mean wait.
    """
    riders = cand.rider[lo:hi]
    free_rider = req.rider_free_at[riders] <= cand.time[lo:hi]
    if np.count_nonzero(free_rider) == hi - lo:
        idx = np.arange(lo, hi)
    else:
        sel = free_rider.nonzero()[0]
        idx = lo + sel
        riders = riders[sel]
    if idx.size > 1 and len(set(riders.tolist())) < idx.size:
        # Same rider twice before one tick: the first request is open, the second is not.
        _, first = np.unique(riders, return_index=True)
        first.sort()
        idx, riders = idx[first], riders[first]
    if not idx.size:
        return
    _, x, y = free if free is not None else _free_drivers(e, s, fleet)
    km = nearest_km(cand.ox[idx], cand.oy[idx], x, y, s.side)
    eta = np.where(km <= s.max_km, km / s.km_per_min + s.half_interval_min, signals.wait)
    surge = signals.surge
    if surge > 1.0:
        price_ok = price_response(s.p, cand.fare[idx] * surge) / demand_bound(s.p)
    else:
        price_ok = cand.price_ok[idx]
    # wait_response, inlined.
    ok = cand.accept_u[idx] < price_ok * (1.0 + eta / s.reference_wait_min) ** s.neg_wait_elasticity
    new = idx[ok]
    if not new.size:
        return
    out = req.out
    out.accepted[new] = True
    out.quoted_eta[new] = eta[ok]
    if surge > 1.0:
        # Unsurged money is filled in for every candidate before the loop.
        out.surge[new] = surge
        fare_cents = np.rint(100.0 * (cand.fare[new] * surge)).astype(np.int64)
        out.fare_cents[new] = fare_cents
        out.commission_cents[new], out.pay_cents[new] = split_fare(fare_cents, s.commission)
    req.rider_free_at[riders[ok]] = NEVER
    req.waiting = np.concatenate((req.waiting, new)) if req.waiting.size else new


def _supply_minute(
    t: int,
    s: Setup,
    fleet: Fleet,
    signals: Signals,
    clocks: ReviewClocks,
    rngs: list[np.random.Generator],
    share: FloatArray,
    online_at: IntArray,
) -> None:
    """Whole-minute decisions: earnings signal, entry / exit, repositioning."""
    e = float(t)
    # Busy drivers who decided to stop have logged off if they dropped off by now.
    if fleet.leave_at:
        fleet.leave_at = [x for x in fleet.leave_at if x > e]
    online = fleet.n_online + len(fleet.leave_at)
    if t > 0:
        # The snapshot of minute t - 1 is the state just before t.
        online_at[t - 1] = online
        net = signals.net_at[t - 1] - s.cost_per_km * signals.reposition_km_at[t - 1]
        signals.online += signals.alpha * (online - signals.online)
        signals.net += signals.alpha * (net - signals.net)
    if s.shift_mean_min > 0.0:
        end_shifts(fleet, e, s.rest_mean_min, rngs[3])
    who, u = clocks.due(t, s.horizon, rngs[1])
    if who.size:
        joined = review(fleet, who, u, signals.earnings(), e)
        start_shifts(fleet, joined, e, s.shift_mean_min, rngs[3])
    if t >= s.warmup:
        fleet.active |= fleet.online
        if (t - s.warmup) % MARGINAL_EVERY_MIN == 0:
            signals.marginal_wages.append(marginal_wage(fleet))
    if s.reposition_rate > 0.0 and t % REPOSITION_EVERY_MIN == 0:
        rate = s.reposition_rate * REPOSITION_EVERY_MIN
        km = reposition(fleet, e, rate, share, s.side, s.km_per_min, rngs[2])
        signals.reposition_km_at[t] += km


# Minutes between samples of the marginal online driver's wage.
MARGINAL_EVERY_MIN = 15
# Share of online drivers (by wage) below the "marginal" one: robust to a stray driver.
MARGINAL_QUANTILE = 0.9
# Time constant of the open requests and idle drivers the surge multiplier reacts to.
SURGE_MEMORY_MIN = 5.0


def marginal_wage(fleet: Fleet) -> float:
    """Reservation wage at the 90th percentile of the online drivers' wages (NaN if none)."""
    wages = fleet.wages[fleet.online]
    if not wages.size:
        return math.nan
    k = min(wages.size - 1, int(MARGINAL_QUANTILE * wages.size))
    return float(np.partition(wages, k)[k])


def _update_surge(e: float, s: Setup, fleet: Fleet, req: Requests, signals: Signals) -> None:
    """Surge multiplier from recent open (unmatched) requests per idle driver, capped."""
    beta = 1.0 - math.exp(-s.interval_min / SURGE_MEMORY_MIN)
    signals.open_requests += beta * (req.waiting.size - signals.open_requests)
    signals.idle_drivers += beta * (fleet.available(e).size - signals.idle_drivers)
    ratio = signals.open_requests / max(signals.idle_drivers, 1.0)
    signals.surge = min(s.surge_max, max(1.0, 1.0 + s.surge_sensitivity * (ratio - 1.0)))


def simulate(params: Mapping[str, ParamValue], seed: int | np.random.SeedSequence) -> SimResult:
    """Run the marketplace for ``horizon_min`` minutes.

    ``params`` overrides the defaults in ``PARAMETERS`` (validated; ParameterError on bad
    input). Pure: the same (params, seed) give byte-identical tables in any process.
    """
    return _simulate(params, seed)


def _simulate(
    params: Mapping[str, ParamValue],
    seed: int | np.random.SeedSequence,
    cold_start_share: float | None = None,
) -> SimResult:
    """``simulate`` with an optional cold start: that share of the pool (chosen at random)
    online at minute 0 instead of the a-priori equilibrium. Tests use it to show the
    entry/exit dynamics find the equilibrium on their own.
    """
    p = resolve_params(params)
    rngs = _streams(seed)
    horizon = int(p["horizon_min"])
    interval_s = int(p["match_interval_s"])
    s = Setup(
        p=p,
        horizon=horizon,
        side=float(p["city_size_km"]),
        km_per_min=float(p["speed_kmh"]) / 60.0,
        max_km=float(p["max_pickup_km"]),
        cost_per_km=float(p["operating_cost_per_km"]),
        commission=float(p["commission_rate"]),
        reposition_rate=float(p["reposition_rate_per_min"]),
        interval_min=interval_s / 60.0,
        surge_max=float(p["surge_max"]),
        surge_sensitivity=float(p["surge_sensitivity"]),
        acceptance_share=float(p["acceptance_wage_share"]),
        decline_timeout_min=int(p["decline_timeout_s"]) / 60.0,
        shift_mean_min=60.0 * float(p["shift_mean_hours"]),
        rest_mean_min=60.0 * float(p["rest_mean_hours"]),
        warmup=int(p["warmup_min"]),
        half_interval_min=0.5 * (interval_s / 60.0),
        reference_wait_min=float(p["reference_wait_min"]),
        neg_wait_elasticity=-float(p["wait_elasticity"]),
    )

    cand = draw_candidates(p, rngs[0])
    n_cand = cand.time.size
    req = Requests(Outcomes.none(n_cand), np.full(int(p["num_riders"]), -NEVER))
    req.out.fare_cents = np.rint(100.0 * cand.fare).astype(np.int64)
    req.out.commission_cents, req.out.pay_cents = split_fare(req.out.fare_cents, s.commission)
    lam = float(p["num_riders"]) * float(p["request_rate_per_hour"]) / 60.0 * price_multiplier(p)
    fleet, initial_earnings = init_fleet(p, rngs[1], lam, cold_start_share)
    clocks = ReviewClocks(float(p["supply_response_per_min"]) * fleet.wages.size, fleet.wages.size)
    # Seeded with the warm-start estimate so the first minutes are neutral.
    online0 = float(max(fleet.n_online, 1))
    signals = Signals(
        alpha=1.0 - math.exp(-1.0 / float(p["earnings_memory_min"])),
        online=online0,
        net=initial_earnings / 60.0 * online0,
        net_at=np.zeros(horizon + 1),
        reposition_km_at=np.zeros(horizon + 1),
        offers_at=np.zeros(horizon + 1, dtype=np.int64),
        declines_at=np.zeros(horizon + 1, dtype=np.int64),
    )
    if s.shift_mean_min > 0.0:
        # Drivers online at minute 0 are part-way through their shifts.
        on = np.flatnonzero(fleet.online)
        start_shifts(fleet, on, 0.0, s.shift_mean_min, rngs[3])
        fleet.shift_end[on] *= rngs[3].random(on.size)
    share = demand_share(p)
    online_at = np.zeros(horizon, dtype=np.int64)

    rounds = _rounds(horizon, interval_s)
    # Candidates requested before the first round are quoted at minute 0; those in
    # [round k, round k + 1) at round k, after its matching.
    bounds = np.searchsorted(cand.time, np.concatenate(([0.0], rounds, [float(horizon)])))
    bound = bounds.tolist()
    _supply_minute(0, s, fleet, signals, clocks, rngs, share, online_at)
    if bound[1] > bound[0]:
        _arrive(0.0, bound[0], bound[1], s, fleet, cand, req, signals, None)
    minute = 1
    for k, e in enumerate(rounds.tolist()):
        # Whole-minute decisions up to now: nothing else happens between rounds, so taking
        # them here (at their own minute's time) is the same as taking them on the minute.
        while minute <= e:
            _supply_minute(minute, s, fleet, signals, clocks, rngs, share, online_at)
            minute += 1
        _cancel(e, cand, req)
        free = _dispatch(e, s, fleet, cand, req, signals)
        if s.surge_max > 1.0:
            _update_surge(e, s, fleet, req, signals)
        if bound[k + 2] > bound[k + 1]:
            _arrive(e, bound[k + 1], bound[k + 2], s, fleet, cand, req, signals, free)
    _cancel(float(horizon), cand, req)
    out = req.out
    out.pickup_at = out.match_at + out.pickup_km / s.km_per_min
    out.dropoff_at = out.pickup_at + cand.trip_min
    online_at[horizon - 1] = fleet.n_online + sum(1 for x in fleet.leave_at if x > horizon)

    run = RunArrays(
        params=p,
        warmup=int(p["warmup_min"]),
        horizon=horizon,
        accepted=np.flatnonzero(req.out.accepted),
        rider=cand.rider,
        req_time=cand.time,
        out=req.out,
        trip_km=cand.trip_km,
        ends=(cand.ox, cand.oy, cand.tx, cand.ty),
        n_drivers=fleet.wages.size,
        online=online_at,
        reposition_km_at=signals.reposition_km_at[:horizon],
        offers_at=signals.offers_at[:horizon],
        declines_at=signals.declines_at[:horizon],
        wages=fleet.wages,
        active_drivers=int(fleet.active.sum()),
        marginal_wages=np.array(signals.marginal_wages),
    )
    snap = snapshot_counts(run)
    return SimResult(
        trips=build_trips(run),
        snapshots=build_snapshots(run, snap),
        metrics=build_metrics(run, snap),
    )
