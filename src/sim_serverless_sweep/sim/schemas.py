"""Arrow schemas of the three tables a simulation returns.

Units are in the column names or the field metadata; money is decimal(12, 2) so
fare = commission + driver_pay holds exactly.
"""

from __future__ import annotations

import pyarrow as pa

MONEY = pa.decimal128(12, 2)


def _f(name: str, type_: pa.DataType, unit: str, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"unit": unit, "doc": doc})


TRIPS_SCHEMA = pa.schema(
    [
        _f("trip_id", pa.int64(), "-", "Request number within the run, from 0 in request order."),
        _f("rider_id", pa.int64(), "-", "Rider who made the request."),
        _f("driver_id", pa.int64(), "-", "Matched driver; null if never matched.", True),
        _f(
            "request_minute",
            pa.int32(),
            "minute",
            "Minute the request was made (floor of request_time_min).",
        ),
        _f(
            "match_minute",
            pa.int32(),
            "minute",
            "Minute a driver was assigned; null if never.",
            True,
        ),
        _f(
            "pickup_minute",
            pa.int32(),
            "minute",
            "Minute the rider was picked up (floor); null if never.",
            True,
        ),
        _f(
            "dropoff_minute",
            pa.int32(),
            "minute",
            "Minute the trip ended (floor); null if never.",
            True,
        ),
        _f(
            # Not "status": that name is the hive partition key in the object keys.
            "trip_status",
            pa.string(),
            "-",
            "completed | cancelled (patience ran out) | in_progress (horizon ended first).",
        ),
        _f(
            "wait_min",
            pa.float64(),
            "minutes",
            "Request to pickup (exact); request to cancellation for cancelled trips.",
            True,
        ),
        _f(
            "pickup_km",
            pa.float64(),
            "km",
            "Driver to rider distance at match; null if never.",
            True,
        ),
        _f("trip_km", pa.float64(), "km", "Origin to destination distance."),
        _f("fare", MONEY, "currency", "Paid by the rider; null unless completed.", True),
        _f("commission", MONEY, "currency", "Kept by the platform; null unless completed.", True),
        _f("driver_pay", MONEY, "currency", "fare - commission; null unless completed.", True),
        _f("in_window", pa.bool_(), "-", "Requested inside the measurement window."),
        _f("request_time_min", pa.float64(), "minutes", "Exact time of the request."),
        _f(
            "match_time_min",
            pa.float64(),
            "minutes",
            "Matching round that assigned the driver; null if never.",
            True,
        ),
        _f("pickup_time_min", pa.float64(), "minutes", "Exact pickup time; null if never.", True),
        _f(
            "dropoff_time_min", pa.float64(), "minutes", "Exact drop-off time; null if never.", True
        ),
        _f(
            "cancel_time_min",
            pa.float64(),
            "minutes",
            "Time patience ran out (request + patience); null unless cancelled.",
            True,
        ),
        _f(
            "quoted_eta_min",
            pa.float64(),
            "minutes",
            "Pickup ETA quoted at request: nearest free driver's drive plus half a matching "
            "interval, or the recent mean wait when none is in reach.",
        ),
        _f("origin_x_km", pa.float64(), "km", "Pickup point, east of the city's west edge."),
        _f("origin_y_km", pa.float64(), "km", "Pickup point, north of the city's south edge."),
        _f("destination_x_km", pa.float64(), "km", "Drop-off point, east coordinate."),
        _f("destination_y_km", pa.float64(), "km", "Drop-off point, north coordinate."),
        _f(
            "surge_multiplier",
            pa.float64(),
            "x fare",
            "Surge multiplier in the quoted fare (1 = none); commission applies to the surged "
            "fare.",
        ),
    ]
)

SNAPSHOTS_SCHEMA = pa.schema(
    [
        _f("minute", pa.int32(), "minute", "Step; counts are taken at the end of the step."),
        _f("drivers_offline", pa.int32(), "drivers", "Drivers not working."),
        _f("drivers_idle", pa.int32(), "drivers", "Online drivers without a rider."),
        _f("drivers_en_route", pa.int32(), "drivers", "Drivers driving to a pickup."),
        _f("drivers_on_trip", pa.int32(), "drivers", "Drivers carrying a rider."),
        _f(
            "riders_waiting",
            pa.int32(),
            "riders",
            "Open requests (matched or not) not yet picked up.",
        ),
        _f("riders_riding", pa.int32(), "riders", "Riders in a car."),
        _f("cumulative_requests", pa.int64(), "requests", "Requests made up to this step."),
        _f("cumulative_completed", pa.int64(), "trips", "Trips completed up to this step."),
        _f("cumulative_cancelled", pa.int64(), "requests", "Requests cancelled up to this step."),
    ]
)

METRICS_SCHEMA = pa.schema(
    [
        _f("window_start_minute", pa.int32(), "minute", "First minute measured (= warmup_min)."),
        _f("window_end_minute", pa.int32(), "minute", "End of measurement (= horizon_min)."),
        _f("requests", pa.int64(), "requests", "Requests made in the window."),
        _f("completed", pa.int64(), "trips", "Window requests completed."),
        _f(
            "served",
            pa.int64(),
            "requests",
            "Window requests picked up by the horizon (a picked-up rider cannot cancel); "
            "includes trips still under way at the end.",
        ),
        _f("cancelled", pa.int64(), "requests", "Window requests cancelled."),
        _f(
            "completion_rate",
            pa.float64(),
            "share",
            "served / (served + cancelled); requests not yet picked up at the end are left out.",
            True,
        ),
        _f(
            "wait_mean_min",
            pa.float64(),
            "minutes",
            "Mean of wait_min (exact pickup - request time) over served window requests "
            "(picked up by the horizon, dropped off or not); null if none.",
            True,
        ),
        _f(
            "wait_p50_min",
            pa.float64(),
            "minutes",
            "Median (linear) of the same waits as wait_mean_min.",
            True,
        ),
        _f(
            "wait_p95_min",
            pa.float64(),
            "minutes",
            "95th percentile (linear) of the same waits as wait_mean_min.",
            True,
        ),
        _f("mean_online_drivers", pa.float64(), "drivers", "Mean drivers online per window step."),
        _f("utilisation", pa.float64(), "share", "On-trip share of online driver time.", True),
        _f(
            "driver_net_hourly_earnings",
            pa.float64(),
            "currency/hour",
            "Driver pay minus operating cost (pickup, trip and repositioning km) per online "
            "driver-hour.",
            True,
        ),
        _f("gross_bookings", MONEY, "currency", "Sum of fares, window requests completed."),
        _f("platform_revenue", MONEY, "currency", "Sum of commissions, window requests completed."),
        _f(
            "on_trip_identity_ratio",
            pa.float64(),
            "ratio",
            "Mean on-trip drivers / (drop-offs per window minute x mean trip minutes of those); "
            "1 if consistent.",
            True,
        ),
        _f(
            "en_route_identity_ratio",
            pa.float64(),
            "ratio",
            "Mean en-route drivers / (pickups per window minute x mean match-to-pickup minutes); "
            "1 if consistent.",
            True,
        ),
        _f(
            "reposition_km",
            pa.float64(),
            "km",
            "Km idle drivers drove repositioning in the window (cost in the earnings).",
        ),
        _f(
            "mean_surge_multiplier",
            pa.float64(),
            "x fare",
            "Mean surge multiplier quoted to window requests (1 without surge); null if none.",
            True,
        ),
        _f(
            "acceptance_rate",
            pa.float64(),
            "share",
            "Offers drivers accepted / offers made in the window (1 with acceptance off).",
            True,
        ),
        _f(
            "trips_per_driver_hour",
            pa.float64(),
            "trips/hour",
            "Drop-offs in the window per online driver-hour.",
            True,
        ),
        _f(
            "pool_online_share",
            pa.float64(),
            "share",
            "mean_online_drivers / num_drivers: the share of the potential pool online.",
        ),
        _f(
            "active_drivers",
            pa.int64(),
            "drivers",
            "Drivers online at some whole minute of the window (the extensive margin).",
        ),
        _f(
            "online_hours_per_active_driver",
            pa.float64(),
            "hours",
            "Online driver-hours in the window / active_drivers (the intensive margin).",
            True,
        ),
        _f(
            "marginal_wage",
            pa.float64(),
            "currency/hour",
            "Reservation wage of the marginal online driver (90th percentile of online "
            "drivers' wages, sampled every 15 window minutes): what earnings must cover.",
            True,
        ),
        _f(
            "marginal_wage_percentile",
            pa.float64(),
            "share",
            "Share of the pool whose reservation wage is at most marginal_wage.",
            True,
        ),
        _f(
            "supply_elasticity",
            pa.float64(),
            "-",
            "Elasticity of drivers willing to be online (wage <= earnings) to earnings, from "
            "the pool's wages at this run's earnings (+-10 %): how far commission moves supply.",
            True,
        ),
    ]
)
