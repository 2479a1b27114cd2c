"""Time-stepped ride-hailing marketplace: free-entry drivers, elastic riders, greedy matching.

One step is one minute. Within step ``t`` the order is fixed (docs/model.md), one phase
function each:

1. ``_end_phases``: en-route drivers whose pickup is due pick their rider up; on-trip
   drivers whose drop-off is due drop off and become idle at the destination (or offline,
   if they decided to stop while busy);
2. ``_cancel``: unmatched requests whose patience has run out are cancelled;
3. ``_arrive``: new requests arrive (demand.py; thinned by the expected-wait response, one
   open request per rider);
4. ``supply.review``: drivers go online / offline by comparing recent platform earnings
   with their wage;
5. ``_dispatch``: waiting requests are matched to idle drivers, nearest pair first
   (matching.py);
6. ``_snapshot``: counts are recorded (the snapshot row of minute ``t``).

All randomness comes from two generators derived from ``seed``: a demand stream, drawn in
one block before the loop (so every parameter point sees the same candidate requests; common
random numbers make sweeps less noisy), and a supply stream (wages, initial fleet,
online/offline review clocks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    Outcomes,
    RunArrays,
    build_metrics,
    build_snapshots,
    build_trips,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


# ========== matching ===================================================================


def match_greedy(
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


# ========== pricing ====================================================================


@dataclass(frozen=True, slots=True)
class Fares:
    """Money of each candidate trip in integer cents: fare = commission + pay exactly."""

    fare_cents: IntArray
    commission_cents: IntArray
    pay_cents: IntArray


def quote(p: Mapping[str, ParamValue], trip_km: FloatArray, trip_min: FloatArray) -> Fares:
    """Fare rounded to the cent; commission rounded half to even; the driver gets the rest."""
    fare_cents = np.rint(
        100.0
        * (
            float(p["base_fare"])
            + float(p["per_km_fare"]) * trip_km
            + float(p["per_min_fare"]) * trip_min
        )
    ).astype(np.int64)
    commission_cents = np.rint(fare_cents * float(p["commission_rate"])).astype(np.int64)
    return Fares(fare_cents, commission_cents, fare_cents - commission_cents)


# ========== demand =====================================================================


@dataclass(frozen=True, slots=True)
class Candidates:
    """Every candidate request of a run, indexed by candidate number (request order)."""

    rate_per_min: float
    start: IntArray  # candidates of minute t are start[t]:start[t + 1]
    req_minute: IntArray
    rider: IntArray
    ox: FloatArray
    oy: FloatArray
    tx: FloatArray
    ty: FloatArray
    deadline: IntArray
    accept_u: FloatArray
    trip_km: FloatArray
    trip_min: IntArray
    fares: Fares
    pay_net: FloatArray  # driver's net before the pickup leg's operating cost


def draw_candidates(p: Mapping[str, ParamValue], rng: np.random.Generator) -> Candidates:
    """A Poisson stream of candidate requests at the price-adjusted rate, all drawn now."""
    horizon = int(p["horizon_min"])
    side = float(p["city_size_km"])
    km_per_min = float(p["speed_kmh"]) / 60.0
    lam = float(p["num_riders"]) * float(p["request_rate_per_hour"]) / 60.0 * price_multiplier(p)
    per_minute = rng.poisson(lam, horizon)
    start = np.zeros(horizon + 1, dtype=np.int64)
    np.cumsum(per_minute, out=start[1:])
    n_cand = int(start[-1])
    req_minute = np.repeat(np.arange(horizon, dtype=np.int64), per_minute)
    rider = rng.integers(0, int(p["num_riders"]), n_cand, dtype=np.int64)
    ends = rng.random((4, n_cand)) * side
    patience = rng.exponential(float(p["patience_mean_min"]), n_cand)
    accept_u = rng.random(n_cand)
    trip_km = np.hypot(ends[2] - ends[0], ends[3] - ends[1])
    trip_min = np.maximum(1, np.ceil(trip_km / km_per_min)).astype(np.int64)
    fares = quote(p, trip_km, trip_min.astype(np.float64))
    return Candidates(
        rate_per_min=lam,
        start=start,
        req_minute=req_minute,
        rider=rider,
        ox=ends[0],
        oy=ends[1],
        tx=ends[2],
        ty=ends[3],
        # Cancelled at the first step at least `patience` after the request (>= 1 minute
        # later, so every request gets one matching attempt).
        deadline=req_minute + np.maximum(1, np.ceil(patience)).astype(np.int64),
        accept_u=accept_u,
        trip_km=trip_km,
        trip_min=trip_min,
        fares=fares,
        pay_net=fares.pay_cents / 100.0 - float(p["operating_cost_per_km"]) * trip_km,
    )


def wait_multiplier(p: Mapping[str, ParamValue], recent_wait: float) -> float:
    """Request-rate multiplier (1 + wait / reference_wait_min)^-wait_elasticity."""
    return float(
        (1.0 + recent_wait / float(p["reference_wait_min"])) ** (-float(p["wait_elasticity"]))
    )


def new_requests(cand: Candidates, t: int, wait_mult: float, rider_busy: BoolArray) -> IntArray:
    """Candidates of minute ``t`` that become requests: the wait does not put the rider off
    and the rider has no open request (thinning, so free riders request at the stated rate).
    """
    lo, hi = int(cand.start[t]), int(cand.start[t + 1])
    if hi <= lo:
        return np.empty(0, dtype=np.int64)
    ok = cand.accept_u[lo:hi] < wait_mult
    ok &= ~rider_busy[cand.rider[lo:hi]]
    new = np.flatnonzero(ok)
    if new.size:
        new += lo
        if new.size > 1 and len(set(cand.rider[new].tolist())) < new.size:
            # Same rider drawn twice in one minute: keep the first request.
            _, first = np.unique(cand.rider[new], return_index=True)
            new = new[np.sort(first)]
    return new


# ========== supply =====================================================================

OFFLINE, IDLE, EN_ROUTE, ON_TRIP = 0, 1, 2, 3

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
    """Per-driver state and the running counts of each state."""

    wages: FloatArray
    x: FloatArray
    y: FloatArray
    state: npt.NDArray[np.int8]
    busy_until: IntArray  # step the current phase ends; -1 when idle or offline
    job: IntArray  # candidate index of the current request; -1 when none
    leaving: BoolArray  # busy drivers who decided to stop log off at their next drop-off
    n_leaving: int = 0
    n_idle: int = 0
    n_en_route: int = 0
    n_on_trip: int = 0

    @property
    def online(self) -> int:
        return self.n_idle + self.n_en_route + self.n_on_trip


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
    state = np.full(n, OFFLINE, dtype=np.int8)
    state[initial_online] = IDLE
    fleet = Fleet(
        wages=wages,
        x=x,
        y=y,
        state=state,
        busy_until=np.full(n, -1, dtype=np.int64),
        job=np.full(n, -1, dtype=np.int64),
        leaving=np.zeros(n, dtype=bool),
        n_idle=int(np.count_nonzero(state == IDLE)),
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
            # Draw the next REVIEW_CHUNK minutes in one go (fewer generator calls; same
            # stream order in every run).
            chunk = min(REVIEW_CHUNK, horizon - t)
            self.start = np.zeros(chunk + 1, dtype=np.int64)
            np.cumsum(rng.poisson(self.rate, chunk), out=self.start[1:])
            self.who = rng.integers(0, self.n_drivers, int(self.start[-1]))
            self.u = rng.random(int(self.start[-1]))
        lo = int(self.start[t % REVIEW_CHUNK])
        hi = int(self.start[t % REVIEW_CHUNK + 1])
        return self.who[lo:hi], self.u[lo:hi]


def review(fleet: Fleet, who: IntArray, u: FloatArray, earnings: float) -> None:
    """Entry and exit of the reviewing drivers ``who``.

    On review an offline driver joins with probability (E - w) / E if E > w, an online one
    leaves (busy: after drop-off) with probability (w - E) / w if w > E, i.e. hazard
    kappa x relative earnings gap.
    """
    if not who.size:
        return
    w = fleet.wages[who]
    st = fleet.state[who]
    join = who[(st == OFFLINE) & (u * earnings < earnings - w)] if earnings > 0.0 else who[:0]
    if join.size:
        if join.size > 1 and len(set(join.tolist())) < join.size:
            join = np.unique(join)
        fleet.state[join] = IDLE
        fleet.n_idle += join.size
    leave = who[(st != OFFLINE) & (u * w < w - earnings)]
    if leave.size:
        if leave.size > 1 and len(set(leave.tolist())) < leave.size:
            leave = np.unique(leave)
        # Idle drivers log off now; busy ones finish the job first.
        idle_now = fleet.state[leave] == IDLE
        fleet.state[leave[idle_now]] = OFFLINE
        fleet.n_idle -= int(np.count_nonzero(idle_now))
        busy = leave[~idle_now]
        if busy.size:
            busy = busy[~fleet.leaving[busy]]
            fleet.leaving[busy] = True
            fleet.n_leaving += busy.size


# ========== the loop ===================================================================


@dataclass(frozen=True, slots=True)
class SimResult:
    """Tables of one run: one row per request, per minute, and one metrics row."""

    trips: pa.Table
    snapshots: pa.Table
    metrics: pa.Table


@dataclass(slots=True)
class Requests:
    """Outcomes of the candidate requests, the open queue and running counts."""

    out: Outcomes
    trip_net: FloatArray  # driver's net pay, fixed at match, booked at drop-off
    rider_busy: BoolArray
    waiting: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    n_requests: int = 0
    n_completed: int = 0
    n_cancelled: int = 0


@dataclass(slots=True)
class Signals:
    """What drivers and riders react to: EWMAs of online drivers, net pay and waits."""

    alpha: float  # EWMA weight per minute
    online: float
    net: float
    wait: float = 0.0

    def earnings(self) -> float:
        """Recent net earnings per online driver-hour."""
        return 60.0 * self.net / self.online if self.online > 0 else 0.0


@dataclass(slots=True)
class StepWaits:
    """Waits resolved (picked up or cancelled) within one step, for the wait signal."""

    total: int = 0
    count: int = 0


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


def _end_phases(t: int, fleet: Fleet, cand: Candidates, req: Requests, waits: StepWaits) -> float:
    """Pickups and drop-offs due at ``t``; returns the net pay dropped off."""
    ending = np.flatnonzero(fleet.busy_until == t)
    if not ending.size:
        return 0.0
    net = 0.0
    ending_state = fleet.state[ending]
    done = ending[ending_state == ON_TRIP]
    if done.size:
        job = fleet.job[done]
        fleet.x[done] = cand.tx[job]
        fleet.y[done] = cand.ty[job]
        fleet.busy_until[done] = -1
        req.out.dropoff_at[job] = t
        req.rider_busy[cand.rider[job]] = False
        net = float(req.trip_net[job].sum())
        n_stop = 0
        if fleet.n_leaving:
            stop = fleet.leaving[done]
            n_stop = int(np.count_nonzero(stop))
            fleet.state[done] = np.where(stop, OFFLINE, IDLE)
            fleet.leaving[done] = False
            fleet.n_leaving -= n_stop
        else:
            fleet.state[done] = IDLE
        fleet.n_on_trip -= done.size
        fleet.n_idle += done.size - n_stop
        req.n_completed += done.size
    arrived = ending[ending_state == EN_ROUTE]
    if arrived.size:
        job = fleet.job[arrived]
        fleet.state[arrived] = ON_TRIP
        fleet.busy_until[arrived] = t + cand.trip_min[job]
        req.out.pickup_at[job] = t
        waits.total += t * arrived.size - int(cand.req_minute[job].sum())
        waits.count += arrived.size
        fleet.n_en_route -= arrived.size
        fleet.n_on_trip += arrived.size
    return net


def _cancel(t: int, cand: Candidates, req: Requests, waits: StepWaits) -> None:
    """Unmatched requests whose patience has run out leave the queue."""
    waiting = req.waiting
    if not waiting.size:
        return
    expired = cand.deadline[waiting] <= t
    if expired.any():
        gone = waiting[expired]
        req.out.cancel_at[gone] = t
        req.rider_busy[cand.rider[gone]] = False
        waits.total += t * gone.size - int(cand.req_minute[gone].sum())
        waits.count += gone.size
        req.n_cancelled += gone.size
        req.waiting = waiting[~expired]


def _arrive(
    t: int, p: Mapping[str, ParamValue], cand: Candidates, req: Requests, wait: float
) -> None:
    """New requests of minute ``t`` join the queue."""
    new = new_requests(cand, t, wait_multiplier(p, wait), req.rider_busy)
    if new.size:
        req.out.accepted[new] = True
        req.rider_busy[cand.rider[new]] = True
        req.n_requests += new.size
        req.waiting = np.concatenate((req.waiting, new)) if req.waiting.size else new


def _dispatch(
    t: int,
    fleet: Fleet,
    cand: Candidates,
    req: Requests,
    max_km: float,
    km_per_min: float,
    cost_per_km: float,
) -> None:
    """Match waiting requests to idle drivers; matched drivers head for the pickup."""
    waiting = req.waiting
    if not waiting.size or not fleet.n_idle:
        return
    idle = np.flatnonzero(fleet.state == IDLE)
    r_pos, d_pos, dist = match_greedy(
        cand.ox[waiting], cand.oy[waiting], fleet.x[idle], fleet.y[idle], max_km
    )
    if not r_pos.size:
        return
    job = waiting[r_pos]
    drv = idle[d_pos]
    fleet.state[drv] = EN_ROUTE
    fleet.busy_until[drv] = t + np.maximum(1, np.ceil(dist / km_per_min)).astype(np.int64)
    fleet.job[drv] = job
    req.out.match_at[job] = t
    req.out.driver_of[job] = drv
    req.out.pickup_km[job] = dist
    # Net pay is fixed once the pickup distance is known; summed at drop-off.
    req.trip_net[job] = cand.pay_net[job] - cost_per_km * dist
    if r_pos.size == waiting.size:
        req.waiting = waiting[:0]
    else:
        keep = np.ones(waiting.size, dtype=bool)
        keep[r_pos] = False
        req.waiting = waiting[keep]
    fleet.n_idle -= drv.size
    fleet.n_en_route += drv.size


def _snapshot(col: IntArray, fleet: Fleet, req: Requests) -> None:
    """Counts at the end of the step, in SNAPSHOTS_SCHEMA order after ``minute``."""
    online = fleet.online
    col[0] = fleet.state.size - online
    col[1] = fleet.n_idle
    col[2] = fleet.n_en_route
    col[3] = fleet.n_on_trip
    col[4] = req.waiting.size + fleet.n_en_route
    col[5] = fleet.n_on_trip
    col[6] = req.n_requests
    col[7] = req.n_completed
    col[8] = req.n_cancelled


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
    km_per_min = float(p["speed_kmh"]) / 60.0
    cost_per_km = float(p["operating_cost_per_km"])
    max_pickup = float(p["max_pickup_km"])

    cand = draw_candidates(p, demand_rng)
    n_cand = cand.req_minute.size
    req = Requests(
        Outcomes.none(n_cand), np.zeros(n_cand), np.zeros(int(p["num_riders"]), dtype=bool)
    )
    fleet, initial_earnings = init_fleet(p, supply_rng, cand.rate_per_min, cold_start_share)
    clocks = ReviewClocks(float(p["supply_response_per_min"]) * fleet.state.size, fleet.state.size)
    # Seeded with the warm-start estimate so the first minutes are neutral.
    online0 = float(max(fleet.n_idle, 1))
    signals = Signals(
        alpha=1.0 - math.exp(-1.0 / float(p["earnings_memory_min"])),
        online=online0,
        net=initial_earnings / 60.0 * online0,
    )
    snap = np.zeros((9, horizon), dtype=np.int64)

    for t in range(horizon):
        waits = StepWaits()
        net_step = _end_phases(t, fleet, cand, req, waits)
        _cancel(t, cand, req, waits)
        if waits.count:
            signals.wait += signals.alpha * (waits.total / waits.count - signals.wait)
        _arrive(t, p, cand, req, signals.wait)
        who, u = clocks.due(t, horizon, supply_rng)
        if who.size:
            review(fleet, who, u, signals.earnings())
        _dispatch(t, fleet, cand, req, max_pickup, km_per_min, cost_per_km)
        signals.online += signals.alpha * (fleet.online - signals.online)
        signals.net += signals.alpha * (net_step - signals.net)
        _snapshot(snap[:, t], fleet, req)

    run = RunArrays(
        params=p,
        warmup=int(p["warmup_min"]),
        horizon=horizon,
        accepted=np.flatnonzero(req.out.accepted),
        rider=cand.rider,
        req_minute=cand.req_minute,
        out=req.out,
        trip_km=cand.trip_km,
        fare_cents=cand.fares.fare_cents,
        commission_cents=cand.fares.commission_cents,
        pay_cents=cand.fares.pay_cents,
        snap=snap,
    )
    return SimResult(
        trips=build_trips(run), snapshots=build_snapshots(run), metrics=build_metrics(run)
    )
