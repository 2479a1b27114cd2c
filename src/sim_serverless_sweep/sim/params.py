"""Parameter registry of the ride-hailing model.

Every model parameter is declared once here; the sweep contract validates request
dimensions against this registry, so any parameter can be swept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

ParamKind = Literal["int", "float"]
ParamValue = int | float


class ParameterError(ValueError):
    """A parameter name or value the model does not accept.

    ``problems`` lists one message per offending parameter, each naming the
    parameter, the value and the rule.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One model parameter: type, default, inclusive valid range, unit, meaning."""

    name: str
    kind: ParamKind
    default: ParamValue
    minimum: ParamValue
    maximum: ParamValue
    unit: str
    description: str
    # Where the default comes from: a cited figure, a derivation, or "a guess".
    source: str = "a guess"

    def check(self, value: object) -> str | None:
        """Return why ``value`` is not acceptable, or None if it is.

        >>> PARAMETERS["num_drivers"].check(10.5)
        'num_drivers: 10.5 is not an integer'
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.name}: {value!r} is not a number ({self.kind} expected)"
        if self.kind == "int" and not isinstance(value, int):
            return f"{self.name}: {value!r} is not an integer"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.name}: {value!r} is not a finite number"
        if not self.minimum <= value <= self.maximum:
            return (
                f"{self.name}: {value!r} is outside the allowed range "
                f"[{self.minimum}, {self.maximum}] {self.unit}"
            )
        return None


def _p(
    name: str,
    kind: ParamKind,
    default: ParamValue,
    minimum: ParamValue,
    maximum: ParamValue,
    unit: str,
    description: str,
    source: str = "a guess",
) -> ParamSpec:
    return ParamSpec(name, kind, default, minimum, maximum, unit, description, source)


# Order here is the column order in every output dataset.
PARAMETERS: dict[str, ParamSpec] = {
    spec.name: spec
    for spec in (
        _p(
            "commission_rate",
            "float",
            0.2,
            0.0,
            0.9,
            "share of fare",
            "Share of each fare the platform keeps; the driver gets the rest.",
            "Uber Mobility take rate 21-29 % (2021-23 results); NYC 2025 platform margin 21 % "
            "(docs/model.md, Calibration).",
        ),
        _p(
            "num_drivers",
            "int",
            150,
            1,
            20_000,
            "drivers",
            "Pool of potential drivers; each decides to be online or offline.",
            "A guess: it scales the market (about 25 % of the pool is online at defaults; SF "
            "2016 peak: about 13 %).",
        ),
        _p(
            "num_riders",
            "int",
            650,
            1,
            200_000,
            "riders",
            "Rider population; each requests trips at request_rate_per_hour.",
            "A guess: with request_rate_per_hour it sets the market size.",
        ),
        _p(
            "city_size_km",
            "float",
            8.0,
            1.0,
            100.0,
            "km",
            "Side of the square city.",
            "A guess for the city; it gives 3.8 km mean trips, near SF's 4.2 km in-service "
            "trip (SFCTA 2017).",
        ),
        _p(
            "speed_kmh",
            "float",
            25.0,
            5.0,
            120.0,
            "km/h",
            "Driving speed for pickups and trips.",
            "A guess within published 13-45 km/h (Manhattan CBD traffic to a Denver ride).",
        ),
        _p(
            "horizon_min",
            "int",
            480,
            30,
            10_080,
            "minutes",
            "Simulated time including warm-up.",
            "Simulation control.",
        ),
        _p(
            "warmup_min",
            "int",
            120,
            0,
            5_000,
            "minutes",
            "Initial period excluded from metrics; must be below horizon_min.",
            "Simulation control.",
        ),
        _p(
            "request_rate_per_hour",
            "float",
            0.2,
            0.0,
            10.0,
            "requests/rider/hour",
            "Request rate of a rider without an open request, at reference_fare and zero ETA.",
            "A guess (no published per-rider request rate found).",
        ),
        _p(
            "price_elasticity",
            "float",
            0.5,
            0.0,
            5.0,
            "-",
            "Elasticity of a rider's request to their own quoted fare: (fare/reference_fare)^-e.",
            "Cohen, Hahn, Hall, Levitt & Metcalfe 2016 (NBER w22627): about 0.6, short-run.",
        ),
        _p(
            "wait_elasticity",
            "float",
            0.3,
            0.0,
            5.0,
            "-",
            "Elasticity to the quoted pickup ETA: (1 + eta/reference_wait_min)^-e.",
            "A guess (no published elasticity of requests to waiting found).",
        ),
        _p(
            "patience_mean_min",
            "float",
            8.0,
            0.5,
            120.0,
            "minutes",
            "Mean (exponential) time an unmatched rider waits before cancelling.",
            "A guess (no published rider-patience figure found).",
        ),
        _p(
            "base_fare",
            "float",
            2.5,
            0.0,
            100.0,
            "currency",
            "Fixed part of every fare.",
            "A guess (mean fare about 9.3, Chicago-2018-like; no rate card retrieved).",
        ),
        _p(
            "per_km_fare",
            "float",
            1.2,
            0.0,
            50.0,
            "currency/km",
            "Distance part of the fare (origin to destination).",
            "A guess (see base_fare).",
        ),
        _p(
            "per_min_fare",
            "float",
            0.25,
            0.0,
            10.0,
            "currency/minute",
            "Time part of the fare (exact trip minutes).",
            "A guess (see base_fare).",
        ),
        _p(
            "operating_cost_per_km",
            "float",
            0.25,
            0.0,
            10.0,
            "currency/km",
            "Driver cost per km driven (pickup and trip).",
            "About half the IRS 2024 rate (0.42 USD/km), near Toronto 2024 variable cost "
            "(C$0.46/km).",
        ),
        _p(
            "reservation_wage_mean",
            "float",
            24.0,
            0.0,
            500.0,
            "currency/hour",
            "Mean net hourly earnings a driver needs to be online.",
            "Top of published net hourly earnings (Seattle 2019: 9.73-23.25 USD/h).",
        ),
        _p(
            "reservation_wage_spread",
            "float",
            10.0,
            0.0,
            500.0,
            "currency/hour",
            "Standard deviation of the (lognormal) wages across drivers; 0 = one common wage.",
            "A guess (no published reservation-wage distribution retrieved).",
        ),
        _p(
            "max_pickup_km",
            "float",
            4.0,
            0.1,
            200.0,
            "km",
            "Longest pickup distance the matcher accepts.",
            "A guess for the cap; the resulting mean pickup (1.2 km) matches SF 2016 (1.1 km "
            "per trip).",
        ),
        _p(
            "reference_fare",
            "float",
            10.0,
            0.01,
            1000.0,
            "currency",
            "Quoted fare at which price neither raises nor lowers the request rate.",
            "Normalisation: about the mean fare at defaults.",
        ),
        _p(
            "reference_wait_min",
            "float",
            5.0,
            0.1,
            120.0,
            "minutes",
            "Wait scale of the demand response to waiting.",
            "A guess.",
        ),
        _p(
            "earnings_memory_min",
            "float",
            30.0,
            1.0,
            1440.0,
            "minutes",
            "Time constant of the recent earnings (and wait) that drivers (riders) react to.",
            "A guess; published markets re-equilibrate over about 8 weeks (Hall, Horton & "
            "Knoepfle 2017).",
        ),
        _p(
            "supply_response_per_min",
            "float",
            0.1,
            0.0,
            1.0,
            "1/minute",
            "Rate at which drivers review being online; hazard = rate x log earnings gap.",
            "A guess (no published review rate); fast enough to settle within the warm-up.",
        ),
        _p(
            "match_interval_s",
            "int",
            30,
            1,
            60,
            "seconds",
            "Time between matching rounds (batched dispatch); requests, pickups and drop-offs "
            "happen at exact times in between.",
            "Platforms batch every few seconds (Didi 2019: about 2 s); 30 s is coarser and "
            "cheaper.",
        ),
        _p(
            "reposition_rate_per_min",
            "float",
            0.2,
            0.0,
            1.0,
            "1/minute",
            "Rate at which surplus idle drivers of an area drive toward areas short of idle "
            "drivers relative to expected demand (km cost charged); 0 = idle drivers stay put.",
            "A guess.",
        ),
        _p(
            "start_hour",
            "float",
            0.0,
            0.0,
            24.0,
            "hour of day",
            "Clock time at minute 0 (places the demand peaks in the run).",
            "Simulation control.",
        ),
        _p(
            "morning_peak_amplitude",
            "float",
            0.0,
            0.0,
            10.0,
            "x base rate",
            "Extra request rate at the morning peak: rate x (1 + amplitude) at its centre; "
            "0 = no peak (stationary demand).",
            "0 = off; no published peak-to-trough ratio found (Uber and CMAP data show "
            "weekday 7-9 am and 5-10 pm peaks).",
        ),
        _p(
            "morning_peak_hour",
            "float",
            8.0,
            0.0,
            24.0,
            "hour of day",
            "Centre of the morning peak.",
            "Commute peak, a guess.",
        ),
        _p(
            "evening_peak_amplitude",
            "float",
            0.0,
            0.0,
            10.0,
            "x base rate",
            "Extra request rate at the evening peak (as morning_peak_amplitude); 0 = no peak.",
            "0 = off.",
        ),
        _p(
            "evening_peak_hour",
            "float",
            18.0,
            0.0,
            24.0,
            "hour of day",
            "Centre of the evening peak.",
            "Commute peak, a guess.",
        ),
        _p(
            "peak_width_hours",
            "float",
            1.5,
            0.25,
            12.0,
            "hours",
            "Standard deviation of each (Gaussian, on the 24-hour clock) peak.",
            "A guess (published profiles show 2-3 hour commute peaks).",
        ),
        _p(
            "hotspot_share",
            "float",
            0.0,
            0.0,
            1.0,
            "share of requests",
            "Share of trip origins drawn in the central hotspot (the rest uniform over the "
            "city), like ridehail's inhomogeneity; 0 = uniform origins.",
            "0 = off.",
        ),
        _p(
            "hotspot_destination_share",
            "float",
            0.0,
            0.0,
            1.0,
            "share of requests",
            "Share of trip destinations drawn in the hotspot; 0 = uniform destinations.",
            "0 = off.",
        ),
        _p(
            "hotspot_size_share",
            "float",
            0.25,
            0.05,
            1.0,
            "share of city side",
            "Side of the square central hotspot as a share of city_size_km.",
            "A guess.",
        ),
        _p(
            "surge_max",
            "float",
            1.0,
            1.0,
            5.0,
            "x fare",
            "Cap of the surge multiplier on fares; 1 = no surge pricing.",
            "1 = off; published surges reach 5x or more (Cohen et al. 2016); the cap is a guess.",
        ),
        _p(
            "surge_sensitivity",
            "float",
            1.0,
            0.0,
            10.0,
            "-",
            "Surge multiplier = 1 + sensitivity x (recent open requests / idle drivers - 1), "
            "between 1 and surge_max.",
            "A guess.",
        ),
        _p(
            "acceptance_wage_share",
            "float",
            0.0,
            0.0,
            3.0,
            "x reservation wage",
            "Drivers decline offers paying less net per minute (pickup included) than this "
            "share of their reservation wage rate; 0 = every offer accepted.",
            "0 = off.",
        ),
        _p(
            "decline_timeout_s",
            "int",
            60,
            0,
            1800,
            "seconds",
            "Time a driver who declined an offer is out of matching.",
            "A guess (Uber's former 2-minute lockout after low acceptance is the policy analogue).",
        ),
        _p(
            "shift_mean_hours",
            "float",
            0.0,
            0.0,
            24.0,
            "hours",
            "Mean length (gamma, CV 0.5) of an online session, after which the driver logs "
            "off and rests; 0 = sessions end only by the earnings rule.",
            "0 = off; no published session length found (typical US drivers are online under "
            "20 hours a week, Uber 2019).",
        ),
        _p(
            "rest_mean_hours",
            "float",
            8.0,
            0.0,
            72.0,
            "hours",
            "Mean (exponential) rest after a shift before the driver reconsiders going online.",
            "A guess.",
        ),
    )
}


def resolve_params(overrides: Mapping[str, object]) -> dict[str, ParamValue]:
    """Defaults overlaid with ``overrides``, every value checked.

    Raises ParameterError naming each unknown parameter or bad value.

    >>> resolve_params({"num_drivers": 50})["num_drivers"]
    50
    """
    problems: list[str] = []
    for name, value in overrides.items():
        spec = PARAMETERS.get(name)
        if spec is None:
            problems.append(f"{name}: unknown parameter (known: {', '.join(PARAMETERS)})")
            continue
        problem = spec.check(value)
        if problem:
            problems.append(problem)
    if problems:
        raise ParameterError(problems)
    resolved: dict[str, ParamValue] = {}
    for name, spec in PARAMETERS.items():
        # Checked above to be an int or float; normalise to the declared kind so 0 and 0.0
        # give the same run and the same columns.
        value = cast(ParamValue, overrides.get(name, spec.default))
        resolved[name] = float(value) if spec.kind == "float" else int(value)
    if resolved["warmup_min"] >= resolved["horizon_min"]:
        raise ParameterError(
            [
                f"warmup_min: {resolved['warmup_min']} must be below horizon_min "
                f"({resolved['horizon_min']})"
            ]
        )
    demand = expected_candidate_requests(resolved)
    if demand > MAX_EXPECTED_REQUESTS:
        raise ParameterError(
            [
                f"num_riders x request_rate_per_hour x horizon_min: {demand:,.0f} expected "
                f"requests (at the largest price response) exceeds the limit of "
                f"{MAX_EXPECTED_REQUESTS:,} per run"
            ]
        )
    return resolved


# Mean distance between two independent uniform points in the unit square,
# (2 + sqrt(2) + 5 asinh(1)) / 15; scales with the city side.
MEAN_DISTANCE_UNIT_SQUARE = (2.0 + math.sqrt(2.0) + 5.0 * math.asinh(1.0)) / 15.0

# Price multiplier cap: a near-free ride must not make the request count explode.
MAX_PRICE_MULTIPLIER = 10.0

# Every request is a row in memory (~150 bytes over its life); this bounds a run to ~1 GB.
MAX_EXPECTED_REQUESTS = 5_000_000


def expected_fare(p: Mapping[str, ParamValue]) -> float:
    """A-priori mean fare of a uniform origin/destination trip (time part at km/speed)."""
    mean_km = MEAN_DISTANCE_UNIT_SQUARE * float(p["city_size_km"])
    km_per_min = float(p["speed_kmh"]) / 60.0
    return (
        float(p["base_fare"])
        + (float(p["per_km_fare"]) + float(p["per_min_fare"]) / km_per_min) * mean_km
    )


def price_multiplier(p: Mapping[str, ParamValue]) -> float:
    """Request-rate multiplier at the a-priori mean fare (warm-start guess only)."""
    ratio = max(expected_fare(p), 0.01) / float(p["reference_fare"])
    return min(MAX_PRICE_MULTIPLIER, math.pow(ratio, -float(p["price_elasticity"])))


def max_price_multiplier(p: Mapping[str, ParamValue]) -> float:
    """Largest price response any quote can get: the cheapest fare is the base fare
    (surge only raises fares)."""
    ratio = max(float(p["base_fare"]), 0.01) / float(p["reference_fare"])
    return min(MAX_PRICE_MULTIPLIER, math.pow(ratio, -float(p["price_elasticity"])))


def expected_candidate_requests(p: Mapping[str, ParamValue]) -> float:
    """Upper bound of the requests a run can hold: every rider always free, nobody minding
    the wait, every quote at the cheapest fare. (Candidates are drawn in short blocks and
    only those that can pass the fare test are kept, so memory follows this bound.)"""
    return (
        float(p["num_riders"])
        * float(p["request_rate_per_hour"])
        / 60.0
        * float(p["horizon_min"])
        * max_price_multiplier(p)
        * peak_factor(p)
    )


def peak_factor(p: Mapping[str, ParamValue]) -> float:
    """Upper bound of the time-of-day factor: both peaks at once (each bump is <= 1)."""
    return 1.0 + float(p["morning_peak_amplitude"]) + float(p["evening_peak_amplitude"])


# The parameters expected_candidate_requests depends on: rate factors, the peaks, then the
# price response (each factor a function of its own parameters only).
DEMAND_PARAMS: tuple[str, ...] = ("num_riders", "request_rate_per_hour", "horizon_min")
PEAK_PARAMS: tuple[str, ...] = ("morning_peak_amplitude", "evening_peak_amplitude")
PRICE_PARAMS: tuple[str, ...] = ("base_fare", "reference_fare", "price_elasticity")
_MAX_PRICE_COMBINATIONS = 10_000


def max_expected_requests(dimensions: Mapping[str, Sequence[ParamValue]]) -> float:
    """Largest expected_candidate_requests over a grid, without expanding it.

    The demand is a product of non-negative factors of disjoint parameter sets, so its
    maximum is the product of the factors' maxima; the price factor is maximised over
    its own (usually tiny) sub-grid, or bounded by its cap when that is too large.

    >>> max_expected_requests({"num_riders": [100, 200]}) > 0
    True
    """
    base: dict[str, ParamValue] = {name: spec.default for name, spec in PARAMETERS.items()}
    for name in (*DEMAND_PARAMS, *PEAK_PARAMS):
        if dimensions.get(name):
            base[name] = max(dimensions[name])
    price_dims = [name for name in PRICE_PARAMS if dimensions.get(name)]
    combinations = math.prod(len(dimensions[name]) for name in price_dims)
    if combinations > _MAX_PRICE_COMBINATIONS:
        multiplier = MAX_PRICE_MULTIPLIER
    else:
        multiplier = max(
            max_price_multiplier({**base, **dict(zip(price_dims, combo, strict=True))})
            for combo in itertools.product(*(dimensions[name] for name in price_dims))
        )
    per_run = (
        float(base["num_riders"])
        * float(base["request_rate_per_hour"])
        / 60.0
        * float(base["horizon_min"])
    )
    return per_run * multiplier * peak_factor(base)
