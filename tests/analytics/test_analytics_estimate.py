"""`sweep plan --estimate`: the arithmetic on a fixed calibration, and the live path."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from sim_serverless_sweep.analytics.estimate import (
    AwsAssumptions,
    Calibration,
    calibration_points,
    cost_proxy,
    estimate_from_calibration,
    estimate_request,
    print_estimate,
)
from sim_serverless_sweep.cli import main as sweep_main
from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.local.memory import MemoryStore
from sim_serverless_sweep.runtime.shard import run_shard
from sim_serverless_sweep.sim import resolve_params

# 4 points, all with the default proxy except num_riders; shard 1 (points 2-3) injected.
REQUEST = parse_request(
    json.dumps(
        {
            "run_id": "est",
            "dimensions": {"num_riders": [1000, 1000 + 1, 1000 + 2, 1000 + 3]},
            "shard_count": 2,
            "seed": 1,
            "replications": 2,
            "failure_injection_shards": [1],
        }
    )
)
AWS = AwsAssumptions(
    lambda_memory_mb=1024,
    lambda_init_s=1.0,
    s3_put_latency_s=0.0,
    lambda_concurrency=10,
    price_gb_s=0.00001,
    price_lambda_request=0.0,
    price_sqs_request=1e-6,
    price_s3_put=1e-3,
    price_s3_gb_month=1.0,
)


def fixed_calibration() -> Calibration:
    proxy = cost_proxy(resolve_params({"num_riders": 1000}))
    # 0.6 s of worker time per `proxy` units; 1000 bytes per simulation
    return Calibration(
        points=[0],
        proxies=[proxy],
        seconds=[0.6],
        stored_bytes=[1000],
        worker_start_s=0.25,
        cpu_count=2,
    )


def test_arithmetic_on_a_fixed_calibration() -> None:
    est = estimate_from_calibration(REQUEST, fixed_calibration(), workers=2, aws=AWS)
    # proxies of 1000 and 1001 riders differ slightly: scale by their ratio to the sample
    base = cost_proxy(resolve_params({"num_riders": 1000}))
    ratio = [cost_proxy(resolve_params({"num_riders": r})) / base for r in (1000, 1001)]
    sims = 2 * 2  # shard 0 only (2 points) x 2 replications
    assert est["simulations"] == sims
    shard0 = 0.6 * 2 * sum(ratio)
    assert est["local"]["total_cpu_s"] == pytest.approx(shard0)
    # one non-empty shard: wall = its time + CLI start + one wave of worker starts
    assert est["local"]["wall_s"] == pytest.approx(shard0 + 0.25 + 0.25)
    aws = est["aws"]
    assert aws["lambda_invocations"] == 1 + 3  # injected shard delivered max_receive_count
    assert aws["lambda_billed_s"] == pytest.approx(shard0 + 2 * 1.0)  # 2 cold environments
    assert aws["lambda_gb_s"] == pytest.approx(aws["lambda_billed_s"] * 1.0)
    assert aws["lambda_cost_usd"] == pytest.approx(aws["lambda_gb_s"] * 0.00001)
    assert aws["sqs_requests"] == 1 + 2 * 4
    assert aws["s3_puts"] == 2 * 3 + 2 + 1  # data files + outcomes + manifest
    stored = 1000 * 2 * sum(ratio)  # bytes per simulation x replications, per point
    assert aws["stored_bytes"] == int(stored)
    assert aws["storage_cost_usd_per_month"] == pytest.approx(stored / 1024**3)
    assert aws["total_cost_usd"] == pytest.approx(
        aws["lambda_cost_usd"] + aws["sqs_requests"] * 1e-6 + aws["s3_puts"] * 1e-3
    )
    assert aws["prices_as_of"] and "us-east-1" in aws["region"]


def test_more_workers_than_cpus_do_not_speed_up() -> None:
    request = parse_request(
        json.dumps(
            {
                "run_id": "w",
                "dimensions": {"num_drivers": list(range(10, 90, 10))},
                "shard_count": 8,
                "seed": 1,
            }
        )
    )
    calibration = fixed_calibration()
    two = estimate_from_calibration(request, calibration, workers=2, aws=AWS)["local"]
    eight = estimate_from_calibration(request, calibration, workers=8, aws=AWS)["local"]
    one = estimate_from_calibration(request, calibration, workers=1, aws=AWS)["local"]
    assert one["wall_s"] == pytest.approx(one["total_cpu_s"] + 0.5)
    assert two["wall_s"] == pytest.approx(two["total_cpu_s"] / 2 + 0.5)
    assert eight["wall_s"] >= two["wall_s"]


def test_calibration_points_span_the_cost_range() -> None:
    plan = Plan.build({"num_riders": [4000, 100, 1000], "horizon_min": [600, 180]}, shard_count=1)
    picks = calibration_points(plan, sample=3)
    proxies = sorted(cost_proxy(resolve_params(plan.point(i))) for i in range(plan.points))
    chosen = [cost_proxy(resolve_params(plan.point(i))) for i in picks]
    assert min(chosen) == proxies[0] and max(chosen) == proxies[-1]
    assert len(picks) == 3


def test_live_estimate_and_printout() -> None:
    body = {
        "run_id": "live",
        "dimensions": {"num_drivers": [20, 40], "horizon_min": [60], "warmup_min": [10]},
        "shard_count": 2,
        "seed": 3,
    }
    request = parse_request(json.dumps(body))
    est = estimate_request(request, workers=1)
    cal = est["calibration"]
    assert cal["points"] == [0, 1] and len(cal["point_seconds"]) == 2
    assert all(s > 0 for s in cal["point_seconds"]) and cal["worker_start_s"] > 0
    # every point was calibrated, so the estimate holds the worker's exact bytes
    plan = Plan.from_request(request)
    run = MemoryStore()
    for shard_id in range(plan.shard_count):
        message = ShardMessage.for_shard(request, dt.date(2026, 1, 2), plan, shard_id)
        run_shard(message, run, "p", 1)
    written = sum(len(v) for k, v in run.objects.items() if "shard_outcomes" not in k)
    assert est["aws"]["stored_bytes"] == pytest.approx(written, abs=1)
    assert math.isfinite(est["aws"]["total_cost_usd"])
    # replications scale the bytes (calibration runs one replicate per point)
    doubled = estimate_request(parse_request(json.dumps({**body, "replications": 2})), 1)
    assert doubled["aws"]["stored_bytes"] == pytest.approx(2 * written, abs=2)
    console = Console(record=True, width=120)
    print_estimate(est, console)
    text = console.export_text()
    assert "GB-s" in text and "S3 PUTs" in text and "as of" in text
    assert "run through the worker" in text
    with pytest.raises(ValueError, match="--workers"):
        estimate_request(request, workers=0)


def test_sweep_plan_estimate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps(
            {
                "run_id": "cli",
                "dimensions": {"num_drivers": [20], "horizon_min": [60], "warmup_min": [10]},
                "shard_count": 1,
                "seed": 3,
            }
        )
    )
    assert sweep_main(["plan", str(path), "--estimate", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["estimate"]["simulations"] == 1
