"""Reference timing: Tom Slee's pure-Python ``ridehail`` in lean mode (not a test).

Runs inside the Python 3.12 venv that ``bench/sim_throughput.py`` creates (ridehail needs
Python >= 3.12 and is not a project dependency), and prints one JSON line:

    bench/.ridehail-venv/bin/python bench/ridehail_reference.py --vehicles 1000 --runs 3

Lean mode: no animation, no output files, and no per-block state dict or measures
(``run_sequence`` on, as ridehail's own sequence runner steps a simulation); the bench calls
``next_block`` in a loop and times only that loop, after imports and set-up. The fleet is
fixed (equilibration off) and all other settings are ridehail's defaults (32 x 32 blocks,
uniform trips of mean length 16, idle vehicles moving, 1-block pickups, no cancellations).
Demand (``base_demand``, requests per block) is calibrated so P3, the share of vehicle
time with a passenger, is ~0.5 over the measurement window (blocks after ``--warmup``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from typing import Any

TARGET_P3 = 0.5


def build(vehicles: int, demand: float, blocks: int, warmup: int, seed: int) -> Any:
    """A lean, fixed-fleet simulation (imports here, outside any timed region)."""
    from ridehail.atom import Animation, Equilibration
    from ridehail.config import RideHailConfig
    from ridehail.simulation import RideHailSimulation

    config = RideHailConfig(use_config_file=False)
    config.animation.value = Animation.NONE
    config.run_sequence.value = True
    config.write_output_files.value = False
    config.equilibration.value = Equilibration.NONE
    config.vehicle_count.value = vehicles
    config.base_demand.value = demand
    config.time_blocks.value = blocks
    # history_results then spans exactly the measurement window.
    config.results_window.value = blocks - warmup
    # ridehail seeds Python's global `random` only for a truthy seed.
    config.random_number_seed.value = seed + 1
    return RideHailSimulation(config)


def run(vehicles: int, demand: float, blocks: int, warmup: int, seed: int) -> dict[str, float]:
    """One timed run: wall and CPU seconds of the block loop, P3 and P2 over the window."""
    from ridehail.atom import History

    sim = build(vehicles, demand, blocks, warmup, seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(blocks):
        sim.next_block()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    if len(sim.vehicles) != vehicles:
        raise RuntimeError(f"fleet changed: {len(sim.vehicles)} vehicles, not {vehicles}")
    total = sim.history_results[History.VEHICLE_TIME].sum
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "p3": sim.history_results[History.VEHICLE_TIME_P3].sum / total,
        "p2": sim.history_results[History.VEHICLE_TIME_P2].sum / total,
    }


def calibrate(vehicles: int, blocks: int, warmup: int) -> tuple[float, float]:
    """Requests per block giving P3 ~ 0.5, from short pilot runs.

    P3 = served requests x mean ride blocks / vehicles while the fleet keeps up, so it is
    proportional to demand; start from the mean trip length (16 blocks) and rescale.
    """
    demand = TARGET_P3 * vehicles / 16.0
    p3 = 0.0
    for attempt in range(3):
        p3 = run(vehicles, demand, blocks, warmup, 1_000 + attempt)["p3"]
        if abs(p3 - TARGET_P3) <= 0.02:
            break
        demand *= TARGET_P3 / max(p3, 0.05)
    return demand, p3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median)")
    parser.add_argument("--blocks", type=int, default=480, help="blocks (minutes) per run")
    parser.add_argument("--warmup", type=int, default=120, help="blocks outside P3's window")
    parser.add_argument("--demand", type=float, help="requests per block (default: calibrate)")
    parser.add_argument("--pilot-blocks", type=int, default=160, help="blocks per pilot run")
    args = parser.parse_args()
    # With no per-block measures, ridehail's convergence tracker divides by empty sums.
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="ridehail")

    from ridehail import __version__

    if args.demand is None:
        pilot_warmup = min(args.warmup, args.pilot_blocks // 2)
        demand, pilot_p3 = calibrate(args.vehicles, args.pilot_blocks, pilot_warmup)
    else:
        demand, pilot_p3 = args.demand, float("nan")
    runs = [run(args.vehicles, demand, args.blocks, args.warmup, s) for s in range(args.runs)]
    seconds = [r["seconds"] for r in runs]
    print(
        json.dumps(
            {
                "version": __version__,
                "vehicles": args.vehicles,
                "blocks": args.blocks,
                "demand": demand,
                "pilot_p3": pilot_p3,
                "median_s": statistics.median(seconds),
                "seconds": seconds,
                "median_cpu_s": statistics.median(r["cpu_seconds"] for r in runs),
                "p3": statistics.median(r["p3"] for r in runs),
                "p2": statistics.median(r["p2"] for r in runs),
                "vehicle_steps": args.vehicles * args.blocks,
            }
        )
    )


if __name__ == "__main__":
    main()
