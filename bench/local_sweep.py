"""Embedded runner speed: 64-point sweeps with 1 and 2 workers.

For three grids (the seed's fleet sizes; fleets 4-5x larger; the same over 24 h) prints medians over
several runs of:
- wall time of `sweep run` with 1 and 2 workers (whole command: interpreter and
  pool start-up included) and the 2-worker speed-up;
- non-simulation overhead: the same 64 points through `run_shard` in one process
  (plan + simulate + Parquet encode + atomic writes) against simulate() alone.

Targets (issue 3): speed-up >= 1.8x on 2 cores; overhead <= 10%.
Usage: python bench/local_sweep.py [--repeats 3] [--scratch DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.runtime import shard as shard_module
from sim_serverless_sweep.sim import simulate

GRIDS: dict[str, dict[str, list[Any]]] = {
    "seed-size fleets": {
        "commission_rate": [0.1, 0.2, 0.3, 0.4],
        "num_drivers": [100, 150, 200, 250],
        "num_riders": [500, 800, 1100, 1400],
    },
    "large fleets": {
        "commission_rate": [0.1, 0.2, 0.3, 0.4],
        "num_drivers": [500, 750, 1000, 1250],
        "num_riders": [2500, 4000, 5500, 7000],
    },
    "large fleets, 24 h horizon": {
        "commission_rate": [0.1, 0.2, 0.3, 0.4],
        "num_drivers": [500, 750, 1000, 1250],
        "num_riders": [2500, 4000, 5500, 7000],
        "horizon_min": [1440],
    },
}


def request_for(dimensions: dict[str, list[Any]]) -> dict[str, Any]:
    return {"run_id": "bench-64", "dimensions": dimensions, "shard_count": 16, "seed": 42}


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


def in_process_seconds(body: dict[str, Any]) -> tuple[float, float]:
    """(time inside simulate(), whole run_shard time) for every shard, in one process.

    simulate() is timed inside run_shard itself, so both figures come from the same
    calls and the difference is exactly plan + table building + encode + writes.
    """
    request = parse_request(json.dumps(body))
    plan = Plan.from_request(request)
    inside = 0.0

    def timed_simulate(params: Any, seed: Any) -> Any:
        nonlocal inside
        began = time.perf_counter()
        result = simulate(params, seed)
        inside += time.perf_counter() - began
        return result

    original = shard_module.simulate
    shard_module.simulate = timed_simulate  # measure in place; restored below
    try:
        with tempfile.TemporaryDirectory() as results:
            store = FilesystemStore(Path(results))
            began = time.perf_counter()
            for shard_id in range(plan.shard_count):
                message = ShardMessage.for_shard(request, dt.date(2026, 1, 1), plan, shard_id)
                shard_module.run_shard(message, store, "sweeps", attempt=1)
            whole = time.perf_counter() - began
    finally:
        shard_module.simulate = original
    return inside, whole


def bench_grid(name: str, dimensions: dict[str, list[Any]], repeats: int) -> None:
    body = request_for(dimensions)
    with tempfile.TemporaryDirectory() as tmp:
        request_path = Path(tmp) / "request.json"
        request_path.write_text(json.dumps(body))
        walls: dict[int, list[float]] = {1: [], 2: []}
        sims: list[float] = []
        shards: list[float] = []
        for _ in range(repeats):
            sim, whole = in_process_seconds(body)
            sims.append(sim)
            shards.append(whole)
            for workers in (1, 2):
                walls[workers].append(run_cli(request_path, workers))
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    sim, whole = statistics.median(sims), statistics.median(shards)
    print(f"{name}: 64 points, 16 shards, medians of {repeats} runs")
    print(f"  inside simulate(), in process     : {sim:7.2f} s")
    print(f"  run_shard (+plan, encode, writes) : {whole:7.2f} s")
    print(
        f"  non-simulation overhead           : {100 * (whole - sim) / whole:6.1f} %"
        "  (target <= 10%)"
    )
    print(
        f"  sweep run --workers 1             : {one:7.2f} s   (runs: "
        + ", ".join(f"{w:.2f}" for w in walls[1])
        + ")"
    )
    print(
        f"  sweep run --workers 2             : {two:7.2f} s   (runs: "
        + ", ".join(f"{w:.2f}" for w in walls[2])
        + ")"
    )
    print(f"  speed-up 2 vs 1 workers           : {one / two:7.2f} x   (target >= 1.8)")
    print(
        f"  fixed cost in the 1-worker wall   : {one - whole:7.2f} s  (interpreter, imports,"
        " pool start-up)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--scratch",
        default=None,
        help="folder for the results written during the bench (default: the system temp "
        "folder); e.g. /dev/shm to leave the disk out of the figures",
    )
    args = parser.parse_args()
    if args.scratch:
        tempfile.tempdir = args.scratch  # every TemporaryDirectory below goes there
    for name, dimensions in GRIDS.items():
        bench_grid(name, dimensions, args.repeats)


if __name__ == "__main__":
    main()
