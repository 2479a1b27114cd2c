"""`sweep plan REQUEST --estimate`: time and cost of a sweep before launching it.

Calibration: a few of the request's own points, chosen across the range of a cost
proxy, are run by ``runtime.calibrate`` through the worker's own ``run_shard`` (one
replicate each). The measured worker seconds per unit of proxy and bytes per simulation
are then applied to every point of the grid (:func:`estimate_from_calibration`, pure
arithmetic). Nothing here runs a simulation.

Cost proxy of one simulation (measured on the vectorised model: time is linear in
simulated minutes, grows with requests per minute, barely with fleet size)::

    horizon_min x (1 + 0.08 x requests_per_minute + 0.0001 x num_drivers)
    requests_per_minute = num_riders x request_rate_per_hour / 60

AWS prices: US East (N. Virginia), as listed on the AWS pricing pages (Lambda page
snapshot of 2026-06-18); free tiers are ignored. See docs/analytics.md for every
assumption.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.sim import resolve_params

if TYPE_CHECKING:
    from rich.console import Console

    from sim_serverless_sweep.core.contract import SweepRequest

PRICES_AS_OF = "2026-06-18"
PRICES_REGION = "us-east-1 (US East, N. Virginia)"


@dataclass(frozen=True, slots=True)
class AwsAssumptions:
    """Deployment and price assumptions of the AWS estimate (all overridable)."""

    lambda_memory_mb: int = 1769  # 1 full vCPU; the simulation is single-threaded
    lambda_arch: str = "arm64"
    lambda_speed_factor: float = 1.0  # Lambda seconds per local second
    lambda_init_s: float = 1.5  # cold start (imports numpy/pyarrow), billed since 2025-08
    lambda_concurrency: int = 50  # event source mapping maximum_concurrency
    s3_put_latency_s: float = 0.03  # per object PUT from Lambda
    max_receive_count: int = 3  # redrive: deliveries before a shard counts as failed
    price_gb_s: float = 0.0000133334  # Lambda arm64, first 7.5 billion GB-s / month
    price_lambda_request: float = 0.20 / 1e6
    price_sqs_request: float = 0.40 / 1e6  # standard queue, per 64 KB request
    price_s3_put: float = 0.005 / 1000  # S3 Standard PUT/COPY/POST/LIST
    price_s3_gb_month: float = 0.023  # S3 Standard, first 50 TB / month


@dataclass(frozen=True, slots=True)
class Calibration:
    """What the calibration sample measured."""

    points: list[int]
    proxies: list[float]
    seconds: list[float]  # run_shard wall time per sampled point: simulate, encode, store
    stored_bytes: list[int]  # bytes of the 3 data files of one simulation
    worker_start_s: float = 0.0  # one spawned worker: interpreter + imports
    cpu_count: int = 1


def cost_proxy(params: Mapping[str, int | float]) -> float:
    """Relative cost of one simulation (see module docstring).

    >>> round(cost_proxy({"horizon_min": 480, "num_riders": 1000,
    ...                   "request_rate_per_hour": 0.12, "num_drivers": 100}), 1)
    561.6
    """
    per_minute = float(params["num_riders"]) * float(params["request_rate_per_hour"]) / 60.0
    return float(params["horizon_min"]) * (
        1.0 + 0.08 * per_minute + 0.0001 * float(params["num_drivers"])
    )


def _lpt_makespan(jobs: Sequence[float], machines: int) -> float:
    """Longest-processing-time-first schedule length of ``jobs`` on ``machines``."""
    if not jobs:
        return 0.0
    loads = [0.0] * max(1, machines)
    for job in sorted(jobs, reverse=True):
        i = loads.index(min(loads))
        loads[i] += job
    return max(loads)


def estimate_from_calibration(
    request: SweepRequest,
    calibration: Calibration,
    workers: int | None,
    aws: AwsAssumptions | None = None,
) -> dict[str, Any]:
    """Pure arithmetic: scale the calibration to the whole grid; return a JSON-able dict."""
    aws = aws or AwsAssumptions()
    plan = Plan.from_request(request)
    reps = request.replications
    injected = set(request.failure_injection_shards)
    sample_proxy = sum(calibration.proxies)
    seconds_per_proxy = sum(calibration.seconds) / sample_proxy
    bytes_per_proxy = sum(calibration.stored_bytes) / sample_proxy

    shard_seconds: list[float] = []
    simulations = 0
    total_seconds = total_bytes = 0.0
    for shard_id in range(plan.shard_count):
        span = plan.shard_range(shard_id)
        if shard_id in injected:
            shard_seconds.append(0.0)  # raises before simulating, on every attempt
            continue
        proxy = sum(cost_proxy(resolve_params(plan.point(i))) for i in span) * reps
        seconds = seconds_per_proxy * proxy
        total_seconds += seconds
        total_bytes += bytes_per_proxy * proxy
        simulations += len(span) * reps
        shard_seconds.append(seconds)

    cpus = max(1, calibration.cpu_count)
    worker_count = workers or cpus
    pool = max(1, min(worker_count, plan.shard_count))
    slowdown = max(1.0, pool / cpus)  # more workers than cores share the cores
    # the `sweep run` process itself, then the spawned workers (in waves of `cpus`)
    startup = calibration.worker_start_s * (1 + math.ceil(pool / cpus))
    local_wall = _lpt_makespan(shard_seconds, pool) * slowdown + startup
    local_wall = max(local_wall, total_seconds / min(pool, cpus) + startup)

    points_done = sum(
        len(plan.shard_range(s)) for s in range(plan.shard_count) if s not in injected
    )
    data_puts = points_done * 3
    outcome_puts = plan.shard_count
    lambda_durations = [
        s * aws.lambda_speed_factor
        + (len(plan.shard_range(i)) * 3 + 1) * aws.s3_put_latency_s * (i not in injected)
        for i, s in enumerate(shard_seconds)
    ]
    invocations = sum(
        aws.max_receive_count if i in injected else 1 for i in range(plan.shard_count)
    )
    environments = min(plan.shard_count, aws.lambda_concurrency)
    billed_s = sum(lambda_durations) + environments * aws.lambda_init_s
    gb_s = billed_s * aws.lambda_memory_mb / 1024
    lambda_cost = gb_s * aws.price_gb_s + invocations * aws.price_lambda_request
    batches = math.ceil(plan.shard_count / 10)
    sqs_requests = batches + 2 * invocations  # SendMessageBatch + receive + delete
    s3_puts = data_puts + outcome_puts + 1  # + the run manifest
    stored_gb = total_bytes / 1024**3
    aws_wall = _lpt_makespan(lambda_durations, environments) + aws.lambda_init_s

    return {
        "run_id": request.run_id,
        "points": plan.points,
        "replications": reps,
        "simulations": simulations,
        "shards": plan.shard_count,
        "failure_injected_shards": sorted(injected),
        "calibration": {
            "points": calibration.points,
            "point_seconds": [round(s, 4) for s in calibration.seconds],
            "seconds_per_simulation_mean": sum(calibration.seconds) / len(calibration.seconds),
            "worker_start_s": calibration.worker_start_s,
            "cpu_count": cpus,
        },
        "local": {
            "total_cpu_s": total_seconds,
            "workers": worker_count,
            "wall_s": local_wall,
        },
        "aws": {
            "region": PRICES_REGION,
            "prices_as_of": PRICES_AS_OF,
            "lambda_arch": aws.lambda_arch,
            "lambda_memory_mb": aws.lambda_memory_mb,
            "lambda_invocations": invocations,
            "lambda_billed_s": billed_s,
            "lambda_gb_s": gb_s,
            "lambda_cost_usd": lambda_cost,
            "wall_s": aws_wall,
            "sqs_requests": sqs_requests,
            "sqs_cost_usd": sqs_requests * aws.price_sqs_request,
            "s3_puts": s3_puts,
            "s3_put_cost_usd": s3_puts * aws.price_s3_put,
            "stored_bytes": int(total_bytes),
            "storage_cost_usd_per_month": stored_gb * aws.price_s3_gb_month,
            "total_cost_usd": (
                lambda_cost + sqs_requests * aws.price_sqs_request + s3_puts * aws.price_s3_put
            ),
        },
        "assumptions": {k: v for k, v in asdict(aws).items()},
    }


def calibration_points(plan: Plan, sample: int = 8) -> list[int]:
    """Point indices for calibration: the cheapest and dearest by cost proxy, plus points
    evenly spaced in grid order (so every dimension's range is visited, including effects
    the proxy does not model, e.g. commission moving the online fleet).

    >>> calibration_points(Plan.build({"num_riders": [100, 200, 400]}, shard_count=1), 2)
    [0, 2]
    """
    step = max(1, plan.points // 20_000)  # proxies of at most ~20k points are compared
    ranked = sorted(
        range(0, plan.points, step), key=lambda i: (cost_proxy(resolve_params(plan.point(i))), i)
    )
    if plan.points <= sample:
        return list(range(plan.points))
    picks = {ranked[0], ranked[-1]}
    spread = max(sample - 2, 2)
    picks.update(round(j * (plan.points - 1) / (spread - 1)) for j in range(spread))
    return sorted(picks)


def calibrate(request: SweepRequest, sample: int = 8, budget_s: float = 20.0) -> Calibration:
    """Time a few of the request's points through the worker (``runtime.calibrate``).

    Points run cheapest first, into a throwaway folder store (what `sweep run` writes
    to); once ``budget_s`` is spent the rest are skipped (at least one point is run).
    """
    from sim_serverless_sweep.local.fs_store import FilesystemStore
    from sim_serverless_sweep.runtime.calibrate import time_points, worker_start_seconds

    plan = Plan.from_request(request)
    proxies = {
        i: cost_proxy(resolve_params(plan.point(i))) for i in calibration_points(plan, sample)
    }
    cheapest_first = sorted(proxies, key=lambda i: (proxies[i], i))
    with tempfile.TemporaryDirectory() as scratch:
        timings = time_points(
            request, cheapest_first, FilesystemStore(Path(scratch)), budget_s=budget_s
        )
    return Calibration(
        points=[t.point_index for t in timings],
        proxies=[proxies[t.point_index] for t in timings],
        seconds=[t.seconds for t in timings],
        stored_bytes=[t.stored_bytes for t in timings],
        worker_start_s=worker_start_seconds(),
        cpu_count=os.cpu_count() or 1,
    )


def estimate_request(request: SweepRequest, workers: int | None) -> dict[str, Any]:
    """Calibrate on the request's own points, then estimate the whole sweep."""
    if workers is not None and workers < 1:
        raise ValueError(f"--workers: {workers} must be >= 1")
    return estimate_from_calibration(request, calibrate(request), workers)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def print_estimate(estimate: Mapping[str, Any], console: Console) -> None:
    """Render an estimate (from estimate_request) as tables with its assumptions."""
    from rich.table import Table

    local, aws, cal = estimate["local"], estimate["aws"], estimate["calibration"]
    table = Table(title="estimate (before launch)", show_header=False)
    table.add_row(
        "calibration",
        f"{len(cal['points'])} point(s) {cal['points']} run through the worker here, "
        f"{cal['seconds_per_simulation_mean']:.3f} s per simulation on average",
    )
    table.add_row(
        "simulations",
        f"{estimate['simulations']:,} "
        f"({estimate['points']:,} points x {estimate['replications']} replication(s)"
        + (
            f", skipping failure-injected shards {estimate['failure_injected_shards']}"
            if estimate["failure_injected_shards"]
            else ""
        )
        + ")",
    )
    table.add_row(
        "total worker time",
        _duration(local["total_cpu_s"]) + " (simulating, encoding and storing)",
    )
    table.add_row(
        f"local wall time, {local['workers']} worker(s)",
        f"{_duration(local['wall_s'])} on {cal['cpu_count']} CPU(s)",
    )
    table.add_row(
        f"AWS Lambda {aws['lambda_arch']} {aws['lambda_memory_mb']} MB",
        f"{aws['lambda_invocations']:,} invocations, {aws['lambda_gb_s']:,.1f} GB-s, "
        f"${aws['lambda_cost_usd']:.4f}; wall ≈ {_duration(aws['wall_s'])}",
    )
    table.add_row("SQS requests", f"{aws['sqs_requests']:,} (${aws['sqs_cost_usd']:.6f})")
    table.add_row("S3 PUTs", f"{aws['s3_puts']:,} (${aws['s3_put_cost_usd']:.4f})")
    table.add_row(
        "S3 stored",
        f"{aws['stored_bytes'] / 1e6:,.1f} MB (${aws['storage_cost_usd_per_month']:.4f} per month)",
    )
    table.add_row("AWS total (one run)", f"${aws['total_cost_usd']:.4f}")
    console.print(table)
    a = estimate["assumptions"]
    console.print(
        f"[dim]Assumptions: prices {aws['region']} as of {aws['prices_as_of']}, free tiers "
        f"ignored; Lambda runs {a['lambda_speed_factor']}x local speed at 1 vCPU, "
        f"{a['lambda_init_s']} s billed cold start per environment, concurrency "
        f"{a['lambda_concurrency']}, {a['s3_put_latency_s']} s per S3 PUT; failure-injected "
        f"shards are delivered {a['max_receive_count']} times; SQS = 1 send per 10 shards + "
        "1 receive and 1 delete per delivery (idle long-polling not counted); time scales "
        "with horizon x (1 + 0.08 requests/min + 0.0001 drivers).[/]"
    )
