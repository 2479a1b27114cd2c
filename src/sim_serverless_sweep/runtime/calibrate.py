"""Calibration for `sweep plan --estimate`: time a few points through the worker's code.

Each sampled point runs as a one-point shard through :func:`runtime.shard.run_shard`,
so what is timed is exactly what a worker does per point (simulate, encode, store).
``analytics.estimate`` turns these timings into time and cost figures; only this module
runs simulations for an estimate.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sim_serverless_sweep.core.contract import SweepRequest
from sim_serverless_sweep.core.keys import DATA_DATASETS, data_key
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.runtime.ports import ObjectStore
from sim_serverless_sweep.runtime.shard import run_shard, utc_now

CALIBRATION_PREFIX = "calibration"


@dataclass(frozen=True, slots=True)
class PointTiming:
    """One point run as a one-point shard with one replicate."""

    point_index: int
    seconds: float  # the run_shard call: simulate, encode, store 3 data files + the outcome
    stored_bytes: int  # the 3 data files


def calibration_message(request: SweepRequest, point_index: int, run_date: dt.date) -> ShardMessage:
    """A one-point shard of ``point_index`` with one replicate and no injected failure.

    Its shard_id is the point's shard in the request's plan, so it writes the keys and
    bytes that a run of the request with one replication writes for that point.
    """
    plan = Plan.from_request(request)
    single = request.model_copy(update={"replications": 1, "failure_injection_shards": []})
    return ShardMessage(
        run_id=request.run_id,
        run_date=run_date,
        shard_id=plan.shard_of(point_index),
        first_point_index=point_index,
        stop_point_index=point_index + 1,
        request=single,
    )


def _stored_bytes(store: ObjectStore, message: ShardMessage) -> int:
    size = 0
    for dataset in DATA_DATASETS:
        key = data_key(
            CALIBRATION_PREFIX,
            dataset,
            message.run_date,
            message.run_id,
            message.shard_id,
            message.first_point_index,
        )
        data = store.get(key)
        if data is None:
            raise RuntimeError(f"run_shard did not write {key}")
        size += len(data)
    return size


def time_points(
    request: SweepRequest,
    points: Sequence[int],
    store: ObjectStore,
    *,
    budget_s: float = 20.0,
    timer: Callable[[], float] = time.perf_counter,
) -> list[PointTiming]:
    """Run ``points`` in the given order through run_shard into ``store``; time and size each.

    The first point also runs once untimed beforehand: it pays the lazy imports and
    first-call costs that a worker pays once, not per point. Once ``budget_s`` is spent
    the remaining points are skipped (at least one point is always timed).
    """
    run_date = utc_now().date()
    messages = [calibration_message(request, p, run_date) for p in points]
    if not messages:
        return []
    run_shard(messages[0], store, CALIBRATION_PREFIX, 1, force=True)
    timings: list[PointTiming] = []
    began = timer()
    for message in messages:
        if timings and timer() - began > budget_s:
            break
        start = timer()
        run_shard(message, store, CALIBRATION_PREFIX, 1, force=True)
        seconds = timer() - start
        timings.append(
            PointTiming(message.first_point_index, seconds, _stored_bytes(store, message))
        )
    return timings


def worker_start_seconds() -> float:
    """Wall time of a fresh interpreter importing the worker module (one spawned worker)."""
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import sim_serverless_sweep.runtime.shard"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - began
