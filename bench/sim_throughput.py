"""Throughput and peak memory of ``simulate`` (not a test: run it by hand).

    .venv/bin/python bench/sim_throughput.py [--runs 7] [--sizes 100 1000 5000]

Each size runs in its own subprocess so peak RSS (``ru_maxrss``) belongs to that size alone.
Riders scale with drivers at the default ratio; the horizon is 8 hours (480 one-minute
steps). Wall-clock rates are the headline; the CPU-time rate beside them shows how much a
busy shared machine slowed the wall clock. Driver-steps counts the whole pool (online or
not) per step, the unit of the reference figure (a pure-Python simulation: ~271k
vehicle-steps/s at 1,000 vehicles).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

HORIZON_MIN = 480
REFERENCE_STEPS_PER_S = 271_000


def params_for(drivers: int) -> dict[str, int]:
    from sim_serverless_sweep.sim import PARAMETERS

    ratio = int(PARAMETERS["num_riders"].default) / int(PARAMETERS["num_drivers"].default)
    return {
        "num_drivers": drivers,
        "num_riders": round(drivers * ratio),
        "horizon_min": HORIZON_MIN,
        "warmup_min": 120,
    }


def child(drivers: int, runs: int) -> None:
    """Measure one size; print one JSON line."""
    from sim_serverless_sweep.sim import simulate

    params = params_for(drivers)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = simulate(params, 0)  # warm caches and lazy imports before timing
    seconds = []
    cpu_seconds = []
    for seed in range(1, runs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = simulate(params, seed)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    tracemalloc.start()
    simulate(params, 0)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row = result.metrics.to_pylist()[0]
    print(
        json.dumps(
            {
                "drivers": drivers,
                "riders": params["num_riders"],
                "median_s": statistics.median(seconds),
                "min_s": min(seconds),
                "median_cpu_s": statistics.median(cpu_seconds),
                "trips": result.trips.num_rows,
                "mean_online": row["mean_online_drivers"],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "import_rss_mb": baseline_mb,
                "traced_peak_mb": traced_peak / 2**20,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per size (median)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 5_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.runs)
        return

    print(f"horizon {HORIZON_MIN} min, median of {args.runs} runs per size, one process each")
    header = (
        f"{'drivers':>8} {'riders':>7} {'trips':>7} {'online':>7} {'median s':>9} "
        f"{'Mdriver-steps/s':>16} {'x ref':>6} {'(CPU time)':>11} {'peak RSS MB':>12} "
        f"{'of it imports':>14} "
        f"{'traced MB':>10}"
    )
    print(header)
    for drivers in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(drivers), "--runs", str(args.runs)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rate = drivers * HORIZON_MIN / r["median_s"]
        cpu_rate = drivers * HORIZON_MIN / r["median_cpu_s"]
        print(
            f"{drivers:>8} {r['riders']:>7} {r['trips']:>7} {r['mean_online']:>7.1f} "
            f"{r['median_s']:>9.4f} {rate / 1e6:>16.2f} {rate / REFERENCE_STEPS_PER_S:>6.1f} "
            f"{cpu_rate / 1e6:>11.2f} "
            f"{r['peak_rss_mb']:>12.0f} {r['import_rss_mb']:>14.0f} {r['traced_peak_mb']:>10.1f}"
        )


if __name__ == "__main__":
    main()
