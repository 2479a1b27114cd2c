"""Embedded runner speed: a 64-point sweep with 1 and 2 workers.

Prints median wall times over several runs, the 2-worker speed-up, and the share
of non-simulation overhead (planning, process start, Parquet encode, writes):
1 - (pure simulate() time of the same points, in process) / (1-worker wall time).

Targets (issue 3): speed-up >= 1.8x on 2 cores; overhead <= 10%.
Usage: python bench/local_sweep.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.sharding import Plan, point_seed
from sim_serverless_sweep.sim import simulate

REQUEST = {
    "run_id": "bench-64",
    "dimensions": {
        "commission_rate": [0.1, 0.2, 0.3, 0.4],
        "num_drivers": [100, 150, 200, 250],
        "num_riders": [500, 800, 1100, 1400],
    },
    "shard_count": 16,
    "seed": 42,
}


def run_cli(request_path: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as results:
        began = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sim_serverless_sweep.cli",
                "run",
                str(request_path),
                "--results",
                results,
                "--workers",
                str(workers),
                "--json",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - began


def pure_simulation_seconds() -> float:
    request = parse_request(json.dumps(REQUEST))
    plan = Plan.from_request(request)
    began = time.perf_counter()
    for index in range(plan.points):
        simulate(plan.point(index), point_seed(request.seed, index, 0))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        request_path = Path(tmp) / "request.json"
        request_path.write_text(json.dumps(REQUEST))
        walls: dict[int, list[float]] = {1: [], 2: []}
        sims: list[float] = []
        for _ in range(args.repeats):
            sims.append(pure_simulation_seconds())
            for workers in (1, 2):
                walls[workers].append(run_cli(request_path, workers))
    one, two, sim = (
        statistics.median(walls[1]),
        statistics.median(walls[2]),
        statistics.median(sims),
    )
    print(f"64-point sweep, 16 shards, medians of {args.repeats} runs")
    print(f"  pure simulate() in process : {sim:7.2f} s")
    print(
        f"  sweep run --workers 1      : {one:7.2f} s   (runs: "
        + ", ".join(f"{w:.2f}" for w in walls[1])
        + ")"
    )
    print(
        f"  sweep run --workers 2      : {two:7.2f} s   (runs: "
        + ", ".join(f"{w:.2f}" for w in walls[2])
        + ")"
    )
    print(f"  speed-up 2 vs 1 workers    : {one / two:7.2f} x   (target >= 1.8)")
    print(
        f"  non-simulation overhead    : {100 * (1 - sim / one):6.1f} %  (target <= 10%;"
        " includes interpreter and pool start-up)"
    )


if __name__ == "__main__":
    main()
