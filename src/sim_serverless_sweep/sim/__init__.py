"""Ride-hailing marketplace simulation: pure NumPy + pyarrow, deterministic per seed.

Public API: ``simulate(params, seed) -> SimResult`` and the parameter registry / schemas.
"""

from sim_serverless_sweep.sim.model import SimResult, simulate
from sim_serverless_sweep.sim.params import (
    PARAMETERS,
    ParameterError,
    ParamSpec,
    resolve_params,
)
from sim_serverless_sweep.sim.schemas import METRICS_SCHEMA, SNAPSHOTS_SCHEMA, TRIPS_SCHEMA

__all__ = [
    "METRICS_SCHEMA",
    "PARAMETERS",
    "SNAPSHOTS_SCHEMA",
    "TRIPS_SCHEMA",
    "ParamSpec",
    "ParameterError",
    "SimResult",
    "resolve_params",
    "simulate",
]
