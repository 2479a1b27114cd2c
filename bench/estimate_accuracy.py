"""Estimate vs measured for a 32-point local sweep (issue 6: within 2x).

Usage: python bench/estimate_accuracy.py [--workers N] [--keep DIR]

Prints the `sweep plan --estimate` figures for the request, runs the same request
with `sweep run` into a temporary folder, and prints the measured wall time and the
sum of shard durations (from the shard_outcomes records) beside the estimates.
Exit status 1 if either ratio falls outside [0.5, 2].
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim_serverless_sweep.analytics.estimate import estimate_request
from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.core.contract import parse_request

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", default=None, help="results folder to keep (default: temp)")
    args = parser.parse_args(argv)
    request = parse_request(json.dumps(REQUEST))
    estimate = estimate_request(request, args.workers)
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
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        wall = time.perf_counter() - began
        con = connect(results, "sweeps")
        (busy,) = con.execute(
            "SELECT sum(duration_s) FROM shard_outcomes WHERE run_id = ?", [request.run_id]
        ).fetchall()[0]
    local = estimate["local"]
    rows = [
        ("shard compute (sum of shard durations)", local["total_cpu_s"], float(busy)),
        (f"local wall time ({local['workers']} workers, incl. CLI start)", local["wall_s"], wall),
    ]
    print(
        f"{request.points} points, {estimate['shards']} shards, "
        f"{estimate['calibration']['cpu_count']} CPU(s); calibration points "
        f"{estimate['calibration']['points']}"
    )
    print(f"{'quantity':58} {'estimate':>9} {'measured':>9} {'ratio':>6}")
    ok = True
    for name, est, measured in rows:
        ratio = est / measured if measured else float("inf")
        ok &= 0.5 <= ratio <= 2.0
        print(f"{name:58} {est:8.2f}s {measured:8.2f}s {ratio:6.2f}")
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
    print("within 2x" if ok else "OUTSIDE 2x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
