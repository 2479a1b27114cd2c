"""Throughput and peak memory of ``simulate`` against a pure-Python reference (not a test).

    .venv/bin/python bench/sim_throughput.py [--rounds 5] [--runs 5] [--sizes 100 1000 5000]
        [--at COMMIT] [--no-reference] [--param NAME=VALUE ...]

What it measures, per size (drivers = vehicles):
- ours: simulated driver-minutes per second of ``simulate`` with a fixed fleet, every driver
  online from minute 0 to the horizon (reservation wage 0, so the warm start puts the whole
  pool online and no driver ever earns less than the wage; supply response 0, so no driver
  ever reviews being online). ``num_riders`` is calibrated per size (short pilot runs, same
  horizon) so utilisation (the metrics row's on-trip share of online time) is 40-50 %;
  the measured utilisation and mean online fleet are printed. Timed: the whole
  ``simulate(params, seed)`` call, tables included. ``--param`` adds overrides (e.g. to
  time new mechanisms switched on).
- the reference: Tom Slee's ``ridehail`` (PyPI, pure Python, needs Python >= 3.12), in
  lean mode with the same number of vehicles and demand calibrated to P3 (busy share with
  a passenger) ~0.5, as vehicle-steps per second. It runs in its own venv (created on
  demand under bench/.ridehail-venv from pyenv's Python 3.12, never a project dependency);
  see bench/ridehail_reference.py for the lean set-up and what is timed. Without Python
  3.12 or when the install fails it prints "reference skipped: why" and carries on.
- the ratio ours / reference (a driver-minute and a vehicle-step are both one vehicle for
  one one-minute step), the cost per driver-minute at the largest size relative to 1,000,
  and peak RSS (``ru_maxrss``) of each size's own subprocess.

Each round runs every size once for ours and once for the reference, back to back in
alternating order, each in a fresh subprocess; a child reports the median of its timed
runs. Rates are medians over rounds, and a ratio is the median of the per-round ratios, so
a slow spell of the shared machine lands on both sides of it. The CPU-time rate beside
ours shows how much load slowed the wall clock. ``--at COMMIT`` measures ``src/`` as of
that commit (exported to a temporary folder) instead of the working tree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HORIZON_MIN = 480
WARMUP_MIN = 120
# Pins the fleet: every driver online all run (see the module docstring).
FIXED_FLEET: dict[str, int | float] = {
    "reservation_wage_mean": 0.0,
    "reservation_wage_spread": 0.0,
    "supply_response_per_min": 0.0,
}
UTILISATION_RANGE = (0.40, 0.50)
RIDERS_PER_DRIVER_GUESS = 15.0

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
REFERENCE_SCRIPT = BENCH / "ridehail_reference.py"
REFERENCE_VENV = BENCH / ".ridehail-venv"
REFERENCE_PACKAGE = "ridehail==2026.10.12.4"
# A reference child times at most this many vehicle-steps (at least one run): ~5 s.
REFERENCE_STEP_BUDGET = 1_500_000

TARGET_RATIO = {100: 12.0, 1_000: 40.0}
TARGET_COST_RATIO = 1.3
TARGET_PEAK_MB = {5_000: 300.0}


# ---- child: one size of ours, in its own process ---------------------------------------


def sim_params(drivers: int, riders: int, extra: dict[str, int | float]) -> dict[str, Any]:
    return {
        "num_drivers": drivers,
        "num_riders": riders,
        "horizon_min": HORIZON_MIN,
        "warmup_min": WARMUP_MIN,
        **FIXED_FLEET,
        **extra,
    }


def calibrate_riders(drivers: int, extra: dict[str, int | float]) -> int:
    """Riders for utilisation ~45 %: utilisation is about proportional to demand while
    the fleet keeps up, so rescale from pilot runs until it lands in range."""
    from sim_serverless_sweep.sim import simulate

    low, high = UTILISATION_RANGE
    target = (low + high) / 2
    riders = round(drivers * RIDERS_PER_DRIVER_GUESS)
    for attempt in range(5):
        row = simulate(sim_params(drivers, riders, extra), 10_000 + attempt).metrics
        utilisation = row.column("utilisation")[0].as_py() or 0.0
        if low + 0.01 <= utilisation <= high - 0.01:
            break
        riders = max(1, round(riders * target / max(utilisation, 0.02)))
    return riders


def child(drivers: int, riders: int | None, runs: int, extra: dict[str, int | float]) -> None:
    """Measure ours at one size; print one JSON line."""
    import sim_serverless_sweep
    from sim_serverless_sweep.sim import simulate

    import_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if riders is None:
        riders = calibrate_riders(drivers, extra)
    params = sim_params(drivers, riders, extra)
    result = simulate(params, 0)  # warm caches and lazy imports before timing
    seconds: list[float] = []
    cpu_seconds: list[float] = []
    for seed in range(1, runs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = simulate(params, seed)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    row = result.metrics.to_pylist()[0]
    snapshots = result.snapshots
    max_offline = (
        int(max(snapshots.column("drivers_offline").to_pylist()))
        if "drivers_offline" in snapshots.column_names
        else None
    )
    print(
        json.dumps(
            {
                "drivers": drivers,
                "riders": riders,
                "median_s": statistics.median(seconds),
                "median_cpu_s": statistics.median(cpu_seconds),
                "utilisation": row["utilisation"],
                "mean_online": row["mean_online_drivers"],
                "max_offline": max_offline,
                "requests": row["requests"],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "import_rss_mb": import_mb,
                "source": str(Path(sim_serverless_sweep.__file__).parent),
            }
        )
    )


# ---- the reference's venv ----------------------------------------------------------------


def find_python312() -> Path | str:
    """pyenv's newest Python 3.12, or why there is none."""
    root = os.environ.get("PYENV_ROOT")
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            root = out.stdout.strip()
    root = root or str(Path.home() / ".pyenv")
    found = []
    for candidate in glob.glob(os.path.join(root, "versions", "3.12.*", "bin", "python")):
        patch = Path(candidate).parents[1].name.split(".")[2]
        if patch.isdigit() and os.access(candidate, os.X_OK):
            found.append((int(patch), Path(candidate)))
    if not found:
        return f"no Python 3.12 under {root}/versions (ridehail needs Python >= 3.12)"
    return max(found)[1]


def reference_python(venv: Path, python: Path | None) -> Path | str:
    """The venv's interpreter with ridehail installed (created on demand), or why not."""
    venv_python = venv / "bin" / "python"
    wanted = REFERENCE_PACKAGE.split("==")[1]
    probe = "import sys, ridehail; assert sys.version_info >= (3, 12); print(ridehail.__version__)"
    if venv_python.exists():
        out = subprocess.run([venv_python, "-c", probe], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() == wanted:
            return venv_python
    base = python or find_python312()
    if isinstance(base, str):
        return base
    print(f"setting up the reference: {base} -m venv {venv}; pip install ...", flush=True)
    if not venv_python.exists():
        made = subprocess.run(
            [base, "-m", "venv", venv], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            return f"{base} -m venv failed: {last_line(made.stderr)}"
    try:
        installed = subprocess.run(
            [venv_python, "-m", "pip", "install", "--quiet", "--no-input", REFERENCE_PACKAGE],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        return f"pip install {REFERENCE_PACKAGE} timed out"
    if installed.returncode != 0:
        return f"pip install {REFERENCE_PACKAGE} failed: {last_line(installed.stderr)}"
    out = subprocess.run([venv_python, "-c", probe], capture_output=True, text=True)
    if out.returncode != 0:
        return f"ridehail does not import in {venv}: {last_line(out.stderr)}"
    return venv_python


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


# ---- parent ------------------------------------------------------------------------------


@dataclass
class Size:
    drivers: int
    riders: int | None = None
    demand: float | None = None
    ours: list[dict[str, Any]] = field(default_factory=list)
    ref: list[dict[str, Any]] = field(default_factory=list)
    ref_skipped: str | None = None

    def ours_rate(self, r: dict[str, Any]) -> float:
        return self.drivers * HORIZON_MIN / float(r["median_s"])

    def ref_rate(self, r: dict[str, Any]) -> float:
        return float(r["vehicle_steps"]) / float(r["median_s"])

    def ratios(self, key: str = "median_s") -> list[float]:
        """Per round: ours / reference, by wall-clock (or CPU) seconds per step."""
        return [
            float(r[key])
            / float(r["vehicle_steps"])
            / (float(o[key]) / (self.drivers * HORIZON_MIN))
            for o, r in zip(self.ours, self.ref, strict=False)
        ]


def run_json(command: list[str | Path], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(last_line(out.stderr))
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_ours(size: Size, args: argparse.Namespace, env: dict[str, str]) -> None:
    command: list[str | Path] = [sys.executable, __file__, "--child", str(size.drivers)]
    command += ["--runs", str(args.runs)]
    command += [arg for p in args.param for arg in ("--param", p)]
    if size.riders is not None:
        command += ["--riders", str(size.riders)]
    try:
        r = run_json(command, env)
    except RuntimeError as e:
        raise SystemExit(f"simulate failed at {size.drivers} drivers: {e}") from None
    size.riders = int(r["riders"])
    size.ours.append(r)


def run_reference(size: Size, python: Path, args: argparse.Namespace) -> None:
    steps = size.drivers * HORIZON_MIN
    runs = max(1, min(args.ref_runs, REFERENCE_STEP_BUDGET // steps))
    command: list[str | Path] = [REFERENCE_SCRIPT]
    command += ["--vehicles", str(size.drivers), "--runs", str(runs)]
    command += ["--blocks", str(HORIZON_MIN), "--warmup", str(WARMUP_MIN)]
    if size.demand is not None:
        command += ["--demand", repr(size.demand)]
    try:
        r = run_json([python, *command])
    except RuntimeError as e:
        size.ref_skipped = f"reference failed: {e}"
        return
    size.demand = float(r["demand"])
    size.ref.append(r)


def export_source(commit: str, into: Path) -> str:
    """Write ``src/`` as of ``commit`` under ``into``; return the full hash."""
    full = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--verify", f"{commit}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", full, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return full


def describe_source(commit: str | None) -> str:
    if commit:
        return f"src/ at commit {commit[:12]}"
    head = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", REPO, "status", "--porcelain", "--", "src"], capture_output=True, text=True
    ).stdout.strip()
    return f"working tree at {head}" + (" (src/ has uncommitted changes)" if dirty else "")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    if not values:
        return "-"
    lo, mid, hi = min(values) / scale, median(values) / scale, max(values) / scale
    return f"{mid:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(sizes: list[Size]) -> None:
    print()
    print(
        f"{'drivers':>7} {'riders':>7} {'util':>5} {'online':>7} "
        f"{'ours M drv-min/s':>19} {'(CPU)':>6} {'ref k veh-steps/s':>20} {'P3':>5} "
        f"{'ours/ref':>16} {'(CPU)':>6} {'peak RSS MB':>11} {'imports':>7}"
    )
    for s in sizes:
        rates = [s.ours_rate(r) for r in s.ours]
        cpu = median([s.drivers * HORIZON_MIN / float(r["median_cpu_s"]) for r in s.ours])
        refs = [s.ref_rate(r) for r in s.ref]
        cpu_ratio = f"{median(s.ratios('median_cpu_s')):.1f}" if s.ref else "-"
        p3_text = f"{median([float(r['p3']) for r in s.ref]):.3f}" if s.ref else "-"
        print(
            f"{s.drivers:>7} {s.riders:>7} {median([r['utilisation'] for r in s.ours]):>5.3f} "
            f"{median([r['mean_online'] for r in s.ours]):>7.1f} "
            f"{spread(rates, 1e6, 2):>19} {cpu / 1e6:>6.1f} {spread(refs, 1e3, 0):>20} "
            f"{p3_text:>5} {spread(s.ratios()):>16} {cpu_ratio:>6} "
            f"{max(r['peak_rss_mb'] for r in s.ours):>11.0f} "
            f"{max(r['import_rss_mb'] for r in s.ours):>7.0f}"
        )
    print(
        "(medians over rounds, range in brackets; a ratio is the median of per-round ratios; "
        "(CPU): the same by CPU time)"
    )
    for s in sizes:
        if s.ref_skipped:
            print(f"reference skipped at {s.drivers}: {s.ref_skipped}")
        low, high = UTILISATION_RANGE
        util = median([r["utilisation"] for r in s.ours])
        if not low <= util <= high:
            print(f"warning: utilisation {util:.3f} at {s.drivers} is outside {low}-{high}")
        offline = [r["max_offline"] for r in s.ours if r["max_offline"]]
        if offline or median([r["mean_online"] for r in s.ours]) < s.drivers:
            print(f"warning: not every driver was online all run at {s.drivers} (fleet not pinned)")

    print()
    print("targets (printed, not asserted):")
    by = {s.drivers: s for s in sizes}
    for drivers, target in TARGET_RATIO.items():
        if drivers in by:
            if by[drivers].ref:
                got = median(by[drivers].ratios())
                result = f"{got:.1f}x, {verdict(got >= target)}"
            else:
                result = f"not measured ({by[drivers].ref_skipped})"
            print(f"  ours/ref at {drivers:,} >= {target:g}x: {result}")
    largest = max(by)
    if 1_000 in by and largest > 1_000:
        # Per round: seconds per driver-minute at the largest size / at 1,000.
        cost = [
            by[1_000].ours_rate(a) / by[largest].ours_rate(b)
            for a, b in zip(by[1_000].ours, by[largest].ours, strict=True)
        ]
        got = median(cost)
        print(
            f"  cost per driver-minute at {largest:,} / at 1,000 <= {TARGET_COST_RATIO:g}: "
            f"{got:.2f} ({min(cost):.2f}-{max(cost):.2f}), {verdict(got <= TARGET_COST_RATIO)}"
        )
    for drivers, limit in TARGET_PEAK_MB.items():
        if drivers in by:
            got = max(r["peak_rss_mb"] for r in by[drivers].ours)
            print(
                f"  peak RSS at {drivers:,} <= {limit:g} MB: {got:.0f} MB, {verdict(got <= limit)}"
            )
    for s in sizes:
        if s.ref:
            r = s.ref[-1]
            print(
                f"reference at {s.drivers:,}: ridehail {r['version']}, base_demand "
                f"{s.demand:.3f}/block, {r['blocks']} blocks, {len(r['seconds'])} timed run(s) "
                f"per round, P3 {median([float(x['p3']) for x in s.ref]):.3f}, "
                f"P2 {median([float(x['p2']) for x in s.ref]):.3f}"
            )


def parse_param(text: str) -> tuple[str, int | float]:
    name, _, value = text.partition("=")
    if not name or not value:
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected NAME=VALUE")
    try:
        return name, int(value)
    except ValueError:
        return name, float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (medians over rounds)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of ours per child")
    parser.add_argument("--ref-runs", type=int, default=5, help="timed reference runs per child")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 5_000])
    parser.add_argument("--ref-sizes", type=int, nargs="*", help="reference sizes (default all)")
    parser.add_argument("--no-reference", action="store_true", help="time ours only")
    parser.add_argument("--ref-python", type=Path, help="a Python >= 3.12 for the reference venv")
    parser.add_argument("--ref-venv", type=Path, default=REFERENCE_VENV, help="reference venv")
    parser.add_argument("--at", metavar="COMMIT", help="measure src/ as of this commit")
    parser.add_argument(
        "--param", action="append", default=[], help="extra model override NAME=VALUE"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--riders", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    extra = dict(parse_param(p) for p in args.param)
    if args.child is not None:
        child(args.child, args.riders, args.runs, extra)
        return

    began = time.perf_counter()
    sizes = [Size(d) for d in args.sizes]
    ref_sizes = set(args.sizes if args.ref_sizes is None else args.ref_sizes)
    python: Path | None = None
    if args.no_reference:
        for s in sizes:
            s.ref_skipped = "--no-reference"
    else:
        found = reference_python(args.ref_venv, args.ref_python)
        if isinstance(found, str):
            print(f"reference skipped: {found}")
            for s in sizes:
                s.ref_skipped = found
        else:
            python = found
    for s in sizes:
        if s.drivers not in ref_sizes and not s.ref_skipped:
            s.ref_skipped = "not in --ref-sizes"

    with tempfile.TemporaryDirectory(prefix="sim-throughput-") as scratch:
        env = dict(os.environ)
        commit = None
        if args.at:
            commit = export_source(args.at, Path(scratch))
            env["PYTHONPATH"] = os.pathsep.join(
                [str(Path(scratch) / "src"), *filter(None, [env.get("PYTHONPATH")])]
            )
        print(
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {describe_source(commit)}; "
            f"horizon {HORIZON_MIN} min (warm-up {WARMUP_MIN}), {args.rounds} rounds, "
            f"ours {args.runs} runs per child; fixed fleet {FIXED_FLEET}"
            + (f" + {extra}" if extra else "")
        )
        for round_index in range(args.rounds):
            for s in sizes:
                reference_first = round_index % 2 == 1
                with_ref = python is not None and not s.ref_skipped
                if with_ref and reference_first:
                    assert python is not None
                    run_reference(s, python, args)
                run_ours(s, args, env)
                if with_ref and not reference_first and not s.ref_skipped:
                    assert python is not None
                    run_reference(s, python, args)
            print(
                f"round {round_index + 1}/{args.rounds} done ({time.perf_counter() - began:.0f} s)"
            )
        if commit and not all(r["source"].startswith(scratch) for s in sizes for r in s.ours):
            raise SystemExit("--at: the children did not import the exported src/")
    report(sizes)
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
