"""Time-stepped ride-hailing marketplace: free-entry drivers, elastic riders, greedy matching.

One step is one minute. Within step ``t`` the order is fixed (docs/model.md):

1. phase ends: en-route drivers whose pickup is due pick their rider up; on-trip drivers
   whose drop-off is due drop off and become idle at the destination (or offline, if they
   decided to stop while busy);
2. unmatched requests whose patience has run out are cancelled;
3. new requests arrive (thinned by the expected-wait response, one open request per rider);
4. drivers go online / offline by comparing recent platform earnings with their wage;
5. waiting requests are matched to idle drivers, nearest pair first;
6. counts are recorded (the snapshot row of minute ``t``).

All randomness comes from two generators derived from ``seed``: a demand stream, drawn in
one block before the loop (so every parameter point sees the same candidate requests; common
random numbers make sweeps less noisy), and a supply stream (wages, initial fleet,
online/offline review clocks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sim_serverless_sweep.sim.params import (
    MEAN_DISTANCE_UNIT_SQUARE,
    ParamValue,
    expected_fare,
    price_multiplier,
    resolve_params,
)
from sim_serverless_sweep.sim.tables import (
    RunArrays,
    build_metrics,
    build_snapshots,
    build_trips,
)

OFFLINE, IDLE, EN_ROUTE, ON_TRIP = 0, 1, 2, 3

# Minutes of driver review clocks drawn per generator call.
REVIEW_CHUNK = 64

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SimResult:
    """Tables of one run: one row per request, per minute, and one metrics row."""

    trips: pa.Table
    snapshots: pa.Table
    metrics: pa.Table


def _streams(seed: int | np.random.SeedSequence) -> tuple[np.random.Generator, np.random.Generator]:
    """Demand and supply generators derived from ``seed``.

    Children are built by hand rather than with ``SeedSequence.spawn`` because spawn
    mutates the caller's object: passing the same SeedSequence twice must give the same run.
    """
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        root = np.random.SeedSequence(int(seed))
    else:
        raise TypeError(f"seed must be an int or numpy.random.SeedSequence, not {seed!r}")
    children = [
        np.random.SeedSequence(
            entropy=root.entropy, spawn_key=(*root.spawn_key, i), pool_size=root.pool_size
        )
        for i in range(2)
    ]
    return np.random.default_rng(children[0]), np.random.default_rng(children[1])


def _wages(rng: np.random.Generator, n: int, mean: float, spread: float) -> npt.NDArray[np.float64]:
    """Lognormal reservation wages with the given mean and standard deviation.

    Lognormal keeps wages positive; spread 0 (or mean 0) gives one common wage.
    """
    if spread <= 0.0 or mean <= 0.0:
        return np.full(n, mean)
    sigma2 = math.log1p((spread / mean) ** 2)
    return rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2), n)


def _match(
    ox: FloatArray,
    oy: FloatArray,
    dx: FloatArray,
    dy: FloatArray,
    max_km: float,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Greedy nearest-first matching of requests (o) to drivers (d) within ``max_km``.

    Returns (request positions, driver positions, distances). Equivalent to sorting all
    pairs by distance and taking each pair whose request and driver are both still free,
    but done in vectorised rounds: a pair that is the nearest for its request *and* for its
    driver among those left is taken by that greedy scan too, and every round takes at least
    the globally nearest pair. Ties go to the lower index (argmin), so results are exact and
    deterministic. Requests (drivers) whose nearest partner is out of reach drop out.
    """
    if not ox.size or not dx.size:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    d2 = np.subtract.outer(ox, dx)
    d2 *= d2
    ddy = np.subtract.outer(oy, dy)
    ddy *= ddy
    d2 += ddy
    limit = max_km * max_km
    at = np.arange(ox.size)
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
        r = np.flatnonzero(mutual & reach)
        if not r.size:
            break
        c = best_c[r]
        out_r.append(rows[r])
        out_c.append(c)
        out_d.append(best_d[r])
        if r.size == at.size:
            break
        # Requests that lost a conflict go again on a matrix of just their rows, with the
        # taken drivers masked; unreachable ones can never match and drop out.
        left = np.flatnonzero(reach & ~mutual)
        if not left.size:
            break
        d2 = d2[left]
        d2[:, c] = np.inf
        rows = rows[left]
        at = np.arange(left.size)
    if len(out_r) == 1:
        return out_r[0], out_c[0], np.sqrt(out_d[0])
    if not out_r:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    return np.concatenate(out_r), np.concatenate(out_c), np.sqrt(np.concatenate(out_d))


def _warm_start(
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
    demand_rng, supply_rng = _streams(seed)

    horizon = int(p["horizon_min"])
    warmup = int(p["warmup_min"])
    n_drivers = int(p["num_drivers"])
    n_riders = int(p["num_riders"])
    side = float(p["city_size_km"])
    km_per_min = float(p["speed_kmh"]) / 60.0
    commission = float(p["commission_rate"])
    cost_per_km = float(p["operating_cost_per_km"])
    max_pickup = float(p["max_pickup_km"])
    wait_ref = float(p["reference_wait_min"])
    wait_el = float(p["wait_elasticity"])
    # EWMA weight per minute for the earnings and wait signals.
    alpha = 1.0 - math.exp(-1.0 / float(p["earnings_memory_min"]))
    review_rate = float(p["supply_response_per_min"]) * n_drivers

    # ---- demand: every candidate request of the run, drawn up front -------------------
    price_mult = price_multiplier(p)
    lam = n_riders * float(p["request_rate_per_hour"]) / 60.0 * price_mult
    per_minute = demand_rng.poisson(lam, horizon)
    start = np.zeros(horizon + 1, dtype=np.int64)
    np.cumsum(per_minute, out=start[1:])
    n_cand = int(start[-1])
    req_minute = np.repeat(np.arange(horizon, dtype=np.int64), per_minute)
    rider = demand_rng.integers(0, n_riders, n_cand, dtype=np.int64)
    ends = demand_rng.random((4, n_cand)) * side
    ox, oy, tx, ty = ends[0], ends[1], ends[2], ends[3]
    patience = demand_rng.exponential(float(p["patience_mean_min"]), n_cand)
    accept_u = demand_rng.random(n_cand)

    trip_km = np.hypot(tx - ox, ty - oy)
    trip_min = np.maximum(1, np.ceil(trip_km / km_per_min)).astype(np.int64)
    fare_cents = np.rint(
        100.0
        * (
            float(p["base_fare"])
            + float(p["per_km_fare"]) * trip_km
            + float(p["per_min_fare"]) * trip_min
        )
    ).astype(np.int64)
    commission_cents = np.rint(fare_cents * commission).astype(np.int64)
    pay_cents = fare_cents - commission_cents
    # Driver's net on a trip before the pickup leg's cost (added at match).
    pay_net = pay_cents / 100.0 - cost_per_km * trip_km
    trip_net = np.zeros(n_cand)
    # Cancelled at the first step at least `patience` after the request (>= 1 minute later,
    # so every request gets one matching attempt).
    deadline = req_minute + np.maximum(1, np.ceil(patience)).astype(np.int64)

    # ---- per-request outcome arrays (-1 = not reached) --------------------------------
    accepted = np.zeros(n_cand, dtype=bool)
    match_at = np.full(n_cand, -1, dtype=np.int64)
    pickup_at = np.full(n_cand, -1, dtype=np.int64)
    dropoff_at = np.full(n_cand, -1, dtype=np.int64)
    cancel_at = np.full(n_cand, -1, dtype=np.int64)
    driver_of = np.full(n_cand, -1, dtype=np.int64)
    pickup_km = np.full(n_cand, np.nan)
    rider_busy = np.zeros(n_riders, dtype=bool)

    # ---- supply ----------------------------------------------------------------------
    wages = _wages(
        supply_rng,
        n_drivers,
        float(p["reservation_wage_mean"]),
        float(p["reservation_wage_spread"]),
    )
    dxs = supply_rng.random(n_drivers) * side
    dys = supply_rng.random(n_drivers) * side
    initial_online, initial_earnings = _warm_start(p, wages, lam)
    if cold_start_share is not None:
        initial_online = np.flatnonzero(supply_rng.random(n_drivers) < cold_start_share)
        initial_earnings = float(p["reservation_wage_mean"])
    state = np.full(n_drivers, OFFLINE, dtype=np.int8)
    state[initial_online] = IDLE
    busy_until = np.full(n_drivers, -1, dtype=np.int64)
    driver_req = np.full(n_drivers, -1, dtype=np.int64)
    # Busy drivers who decided to stop log off at their next drop-off.
    leaving = np.zeros(n_drivers, dtype=bool)
    n_leaving = 0

    n_idle = int(np.count_nonzero(state == IDLE))
    n_en_route = 0
    n_on_trip = 0
    n_requests = 0
    n_completed = 0
    n_cancelled = 0

    # Earnings signal: ratio of EWMAs (net pay per minute / online drivers), seeded with the
    # warm-start estimate so the first minutes are neutral.
    ewma_online = float(max(n_idle, 1))
    ewma_net = initial_earnings / 60.0 * ewma_online
    ewma_wait = 0.0

    snap = np.zeros((9, horizon), dtype=np.int64)
    waiting = np.empty(0, dtype=np.int64)

    for t in range(horizon):
        net_step = 0.0
        wait_sum = 0
        wait_n = 0

        # 1. phase ends
        ending = np.flatnonzero(busy_until == t)
        if ending.size:
            ending_state = state[ending]
            done = ending[ending_state == ON_TRIP]
            if done.size:
                req = driver_req[done]
                dxs[done] = tx[req]
                dys[done] = ty[req]
                busy_until[done] = -1
                dropoff_at[req] = t
                rider_busy[rider[req]] = False
                net_step = float(trip_net[req].sum())
                n_stop = 0
                if n_leaving:
                    stop = leaving[done]
                    n_stop = int(np.count_nonzero(stop))
                    state[done] = np.where(stop, OFFLINE, IDLE)
                    leaving[done] = False
                    n_leaving -= n_stop
                else:
                    state[done] = IDLE
                n_on_trip -= done.size
                n_idle += done.size - n_stop
                n_completed += done.size
            arrived = ending[ending_state == EN_ROUTE]
            if arrived.size:
                req = driver_req[arrived]
                state[arrived] = ON_TRIP
                busy_until[arrived] = t + trip_min[req]
                pickup_at[req] = t
                wait_sum += t * arrived.size - int(req_minute[req].sum())
                wait_n += arrived.size
                n_en_route -= arrived.size
                n_on_trip += arrived.size

        # 2. cancellations
        if waiting.size:
            expired = deadline[waiting] <= t
            if expired.any():
                gone = waiting[expired]
                cancel_at[gone] = t
                rider_busy[rider[gone]] = False
                wait_sum += t * gone.size - int(req_minute[gone].sum())
                wait_n += gone.size
                n_cancelled += gone.size
                waiting = waiting[~expired]

        if wait_n:
            ewma_wait += alpha * (wait_sum / wait_n - ewma_wait)

        # 3. arrivals: a candidate becomes a request if the expected wait does not put the
        # rider off and the rider has no open request.
        lo, hi = int(start[t]), int(start[t + 1])
        if hi > lo:
            wait_mult = (1.0 + ewma_wait / wait_ref) ** (-wait_el)
            ok = accept_u[lo:hi] < wait_mult
            ok &= ~rider_busy[rider[lo:hi]]
            new = np.flatnonzero(ok)
            if new.size:
                new += lo
                if new.size > 1 and len(set(rider[new].tolist())) < new.size:
                    # Same rider drawn twice in one minute: keep the first request.
                    _, first = np.unique(rider[new], return_index=True)
                    new = new[np.sort(first)]
                accepted[new] = True
                rider_busy[rider[new]] = True
                n_requests += new.size
                waiting = np.concatenate((waiting, new)) if waiting.size else new

        # 4. entry / exit: each driver reviews the online decision at rate kappa per minute
        # (Poisson clocks, so only ~kappa * N drivers are touched per step); on review an
        # offline driver joins with probability (E - w) / E if E > w, an online one leaves
        # (busy: after drop-off) with probability (w - E) / w if w > E, i.e. hazard
        # kappa x relative earnings gap.
        if t % REVIEW_CHUNK == 0:
            # Draw the review clocks for the next REVIEW_CHUNK minutes in one go (fewer
            # generator calls; same stream order in every run).
            chunk = min(REVIEW_CHUNK, horizon - t)
            review_start = np.zeros(chunk + 1, dtype=np.int64)
            np.cumsum(supply_rng.poisson(review_rate, chunk), out=review_start[1:])
            review_who = supply_rng.integers(0, n_drivers, int(review_start[-1]))
            review_u = supply_rng.random(int(review_start[-1]))
        r_lo = int(review_start[t % REVIEW_CHUNK])
        r_hi = int(review_start[t % REVIEW_CHUNK + 1])
        if r_hi > r_lo:
            who = review_who[r_lo:r_hi]
            u = review_u[r_lo:r_hi]
            earnings = 60.0 * ewma_net / ewma_online if ewma_online > 0 else 0.0
            w = wages[who]
            st = state[who]
            if earnings > 0.0:
                join = who[(st == OFFLINE) & (u * earnings < earnings - w)]
            else:
                join = who[:0]
            if join.size:
                if join.size > 1 and len(set(join.tolist())) < join.size:
                    join = np.unique(join)
                state[join] = IDLE
                n_idle += join.size
            leave = who[(st != OFFLINE) & (u * w < w - earnings)]
            if leave.size:
                if leave.size > 1 and len(set(leave.tolist())) < leave.size:
                    leave = np.unique(leave)
                # Idle drivers log off now; busy ones finish the job first.
                idle_now = state[leave] == IDLE
                state[leave[idle_now]] = OFFLINE
                n_idle -= int(np.count_nonzero(idle_now))
                busy = leave[~idle_now]
                if busy.size:
                    busy = busy[~leaving[busy]]
                    leaving[busy] = True
                    n_leaving += busy.size

        # 5. matching
        if waiting.size and n_idle:
            idle = np.flatnonzero(state == IDLE)
            r_pos, d_pos, dist = _match(ox[waiting], oy[waiting], dxs[idle], dys[idle], max_pickup)
            if r_pos.size:
                req = waiting[r_pos]
                drv = idle[d_pos]
                state[drv] = EN_ROUTE
                busy_until[drv] = t + np.maximum(1, np.ceil(dist / km_per_min)).astype(np.int64)
                driver_req[drv] = req
                match_at[req] = t
                driver_of[req] = drv
                pickup_km[req] = dist
                # Net pay is fixed once the pickup distance is known; summed at drop-off.
                trip_net[req] = pay_net[req] - cost_per_km * dist
                if r_pos.size == waiting.size:
                    waiting = waiting[:0]
                else:
                    keep = np.ones(waiting.size, dtype=bool)
                    keep[r_pos] = False
                    waiting = waiting[keep]
                n_idle -= drv.size
                n_en_route += drv.size

        online = n_idle + n_en_route + n_on_trip
        ewma_online += alpha * (online - ewma_online)
        ewma_net += alpha * (net_step - ewma_net)

        # 6. snapshot (end of step)
        col = snap[:, t]
        col[0] = n_drivers - online
        col[1] = n_idle
        col[2] = n_en_route
        col[3] = n_on_trip
        col[4] = waiting.size + n_en_route
        col[5] = n_on_trip
        col[6] = n_requests
        col[7] = n_completed
        col[8] = n_cancelled

    run = RunArrays(
        params=p,
        warmup=warmup,
        horizon=horizon,
        accepted=np.flatnonzero(accepted),
        rider=rider,
        req_minute=req_minute,
        match_at=match_at,
        pickup_at=pickup_at,
        dropoff_at=dropoff_at,
        cancel_at=cancel_at,
        driver_of=driver_of,
        pickup_km=pickup_km,
        trip_km=trip_km,
        fare_cents=fare_cents,
        commission_cents=commission_cents,
        pay_cents=pay_cents,
        snap=snap,
    )
    return SimResult(
        trips=build_trips(run), snapshots=build_snapshots(run), metrics=build_metrics(run)
    )
