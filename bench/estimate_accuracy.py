"""Estimate vs measured for a 32-point local sweep (issue 6: within 2x).

Usage: python bench/estimate_accuracy.py [--workers N] [--repeats 3] [--keep DIR]

Estimates the request (`sweep plan --estimate`'s calibration) and runs it with
`sweep run` into a temporary folder, each ``--repeats`` times, and prints the medians:
measured wall time and sum of shard durations (from the shard_outcomes records) beside
the estimates, and what the calibration itself costs (wall time of the estimate, and
its slowest point through run_shard). Exit status 1 if either ratio falls outside
[0.5, 2] or the slowest calibration point takes 5 s or more.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sim_serverless_sweep.analytics.estimate import estimate_request
from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.core.contract import SweepRequest, parse_request

REQUEST = {
    "run_id": "bench-estimate-32",
    "dimensions": {
        "commission_rate": [0.1, 0.2, 0.3, 0.4],
        "num_drivers": [100, 300],
        "num_riders": [500, 1000, 2000, 4000],
    },
    "shard_count": 8,
    "seed": 7,
}
POINT_CEILING_S = 5.0  # one calibration point through run_shard (one replicate)


def timed_estimate(request: SweepRequest, workers: int | None) -> tuple[dict[str, Any], float]:
    began = time.perf_counter()
    estimate = estimate_request(request, workers)
    return estimate, time.perf_counter() - began


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", default=None, help="results folder to keep (default: temp)")
    args = parser.parse_args(argv)
    request = parse_request(json.dumps(REQUEST))
    estimates = [timed_estimate(request, args.workers) for _ in range(args.repeats)]
    walls: list[float] = []
    busies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(args.keep or tmp)
        request_file = results / "request.json"
        results.mkdir(parents=True, exist_ok=True)
        request_file.write_text(json.dumps(REQUEST))
        command = [
            sys.executable,
            "-m",
            "sim_serverless_sweep.cli",
            "run",
            str(request_file),
            "--results",
            str(results),
            "--json",
            "--force",
        ]
        if args.workers:
            command += ["--workers", str(args.workers)]
        for _ in range(args.repeats):
            began = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            walls.append(time.perf_counter() - began)
            con = connect(results, "sweeps")
            (busy,) = con.execute(
                "SELECT sum(duration_s) FROM shard_outcomes WHERE run_id = ?", [request.run_id]
            ).fetchall()[0]
            con.close()
            busies.append(float(busy))
    estimate = estimates[0][0]
    local = estimate["local"]
    rows = [
        (
            "shard compute (sum of shard durations)",
            [e["local"]["total_cpu_s"] for e, _ in estimates],
            busies,
        ),
        (
            f"local wall time ({local['workers']} workers, incl. CLI start)",
            [e["local"]["wall_s"] for e, _ in estimates],
            walls,
        ),
    ]
    print(
        f"{request.points} points, {estimate['shards']} shards, "
        f"{estimate['calibration']['cpu_count']} CPU(s); calibration points "
        f"{estimate['calibration']['points']}; medians of {args.repeats} runs"
    )
    print(f"{'quantity':58} {'estimate':>9} {'measured':>9} {'ratio':>6}")
    ok = True
    for name, est_runs, measured_runs in rows:
        est, measured = statistics.median(est_runs), statistics.median(measured_runs)
        ratio = est / measured if measured else float("inf")
        ok &= 0.5 <= ratio <= 2.0
        print(f"{name:58} {est:8.2f}s {measured:8.2f}s {ratio:6.2f}")
        print(f"  (estimates: {_runs(est_runs)}; measured: {_runs(measured_runs)})")
    slowest = [max(e["calibration"]["point_seconds"]) for e, _ in estimates]
    ok &= statistics.median(slowest) < POINT_CEILING_S
    print(
        f"calibration: `--estimate` takes {statistics.median([w for _, w in estimates]):.2f} s "
        f"(runs: {_runs([w for _, w in estimates])}); slowest point through run_shard "
        f"{statistics.median(slowest):.3f} s (ceiling {POINT_CEILING_S:.0f} s)"
    )
    aws = estimate["aws"]
    print(
        f"AWS (estimate only): {aws['lambda_gb_s']:.1f} GB-s ${aws['lambda_cost_usd']:.4f}, "
        f"{aws['sqs_requests']} SQS requests, {aws['s3_puts']} S3 PUTs, "
        f"{aws['stored_bytes'] / 1e6:.1f} MB stored, total ${aws['total_cost_usd']:.4f}"
    )
    load = os.getloadavg()[0]
    print(
        f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPU(s); the "
        "estimate assumes idle CPUs"
    )
    print("within 2x and under the calibration ceiling" if ok else "OUTSIDE the targets")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
