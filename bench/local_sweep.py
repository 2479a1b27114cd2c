"""Embedded runner speed: 64-point sweeps with 1 and 2 workers.

For three grids (the seed's fleet sizes; fleets 4-5x larger; the same over 24 h) prints
medians over several rounds of:
- wall time of the sweep with 1 and 2 workers, two ways: the runner (`sweep run --json`
  called in this process, whose imports are done: validate, submit, fork the pool, run
  every shard, summarise) and the whole `sweep run --json` command (adds the interpreter
  and ~0.3 s of imports, which no worker count shortens). Each round runs 1 and 2
  workers back to back, in alternating order, and a speed-up is the median of the
  per-round ratios, so slow spells of a shared machine fall on both sides of a ratio;
- the machine's own ceiling for that speed-up: the same 64 simulate() calls in one
  forked process against shared by two, even and odd points (no runner, no files, no
  start-up); not measured in the same moments as the sweeps, so a guide only;
- non-simulation overhead: the same 64 points through `run_shard` in one process
  (plan + simulate + key columns + Parquet encode + atomic writes) against the time
  spent inside simulate() during those very calls.

Targets (issue 3): speed-up >= 1.8x on 2 cores; overhead <= 10%.
Usage: python bench/local_sweep.py [--repeats 5] [--scratch DIR] [--grid NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sim_serverless_sweep import cli
from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan, point_seed
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


def run_in_process(request_path: Path, workers: int) -> float:
    """The runner's wall time: `sweep run --json` called in this (already imported) process."""
    with tempfile.TemporaryDirectory() as results, contextlib.redirect_stdout(io.StringIO()):
        began = time.perf_counter()
        argv = ["run", str(request_path), "--results", results, "--workers", str(workers)]
        code = cli.main([*argv, "--json"])
        elapsed = time.perf_counter() - began
    if code != 0:
        raise RuntimeError(f"bench sweep exited with {code}")
    return elapsed


def _simulate_points(body: dict[str, Any], indices: range) -> None:
    request = parse_request(json.dumps(body))
    plan = Plan.from_request(request)
    for index in indices:
        simulate(plan.point(index), point_seed(request.seed, index, 0))


def ceiling_ratio(body: dict[str, Any]) -> float:
    """simulate() of all points in one forked process / shared by two, wall time."""
    context = multiprocessing.get_context("fork")
    points = Plan.from_request(parse_request(json.dumps(body))).points

    def timed(parts: list[range]) -> float:
        began = time.perf_counter()
        procs = [context.Process(target=_simulate_points, args=(body, part)) for part in parts]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
            if proc.exitcode != 0:
                raise RuntimeError(f"ceiling worker exited with {proc.exitcode}")
        return time.perf_counter() - began

    # Even and odd points: contiguous halves would differ in work (commission_rate, the
    # slowest-varying dimension, changes the number of trips), understating the ceiling.
    return timed([range(points)]) / timed([range(0, points, 2), range(1, points, 2)])


def in_process_seconds(body: dict[str, Any]) -> tuple[float, float]:
    """(time inside simulate(), whole run_shard time) for every shard, in one process.

    simulate() is timed inside run_shard itself, so both figures come from the same
    calls and the difference is exactly plan + key columns + encode + writes.
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


def _runs(values: list[float], unit: str = "") -> str:
    return ", ".join(f"{v:.2f}{unit}" for v in values)


def bench_grid(name: str, dimensions: dict[str, list[Any]], repeats: int) -> None:
    body = request_for(dimensions)
    with tempfile.TemporaryDirectory() as tmp:
        request_path = Path(tmp) / "request.json"
        request_path.write_text(json.dumps(body))
        walls: dict[str, dict[int, list[float]]] = {
            "runner": {1: [], 2: []},
            "command": {1: [], 2: []},
        }
        ratios: dict[str, list[float]] = {"runner": [], "command": []}
        ceilings: list[float] = []
        overheads: list[float] = []
        sims: list[float] = []
        shards: list[float] = []
        timers = {
            "runner": lambda workers: run_in_process(request_path, workers),
            "command": lambda workers: run_cli(request_path, workers),
        }
        for round_ in range(repeats):
            sim, whole = in_process_seconds(body)
            sims.append(sim)
            shards.append(whole)
            overheads.append(100 * (whole - sim) / whole)
            ceilings.append(ceiling_ratio(body))
            for way, timer in timers.items():
                pair: dict[int, float] = {}
                for workers in (1, 2) if round_ % 2 == 0 else (2, 1):
                    pair[workers] = timer(workers)
                    walls[way][workers].append(pair[workers])
                ratios[way].append(pair[1] / pair[2])
    sim, whole = statistics.median(sims), statistics.median(shards)
    ceiling = statistics.median(ceilings)
    print(f"{name}: 64 points, 16 shards, {repeats} rounds (medians)")
    print(f"  inside simulate(), in process     : {sim:7.2f} s")
    print(f"  run_shard (+plan, encode, writes) : {whole:7.2f} s")
    print(
        f"  non-simulation overhead           : {statistics.median(overheads):6.1f} %"
        f"  (target <= 10%; rounds: {_runs(overheads)})"
    )
    for way, label in (("runner", "runner"), ("command", "sweep run command")):
        for workers in (1, 2):
            wall = statistics.median(walls[way][workers])
            print(
                f"  {label + f', {workers} worker(s)':<34}: {wall:7.2f} s"
                f"   (rounds: {_runs(walls[way][workers])})"
            )
        print(
            f"  {'speed-up, ' + label:<34}: {statistics.median(ratios[way]):7.2f} x"
            f"   (target >= 1.8; rounds: {_runs(ratios[way])})"
        )
    print(f"  machine ceiling, bare simulate()  : {ceiling:7.2f} x   (rounds: {_runs(ceilings)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--scratch",
        default=None,
        help="folder for the results written during the bench (default: the system temp "
        "folder); e.g. /dev/shm to leave the disk out of the figures",
    )
    parser.add_argument("--grid", choices=sorted(GRIDS), action="append")
    args = parser.parse_args()
    if args.scratch:
        tempfile.tempdir = args.scratch  # every TemporaryDirectory below goes there
    for name in args.grid or GRIDS:
        bench_grid(name, GRIDS[name], args.repeats)


if __name__ == "__main__":
    main()
