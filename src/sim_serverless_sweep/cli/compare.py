"""`sweep compare RUN_A RUN_B`: how run B differs from run A, point by point.

Prints the summary (points matched and unmatched, which interval, how many (point,
metric) pairs moved against how many chance alone would flag, per metric the mean and
largest moves) and a table of the flagged differences (every difference with --all).
The use case is ``analytics.compare.compare_runs``; docs/analytics.md, "Comparing runs",
describes the method.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim_serverless_sweep.cli.support import EXIT_OK, UsageError

if TYPE_CHECKING:
    from sim_serverless_sweep.analytics.compare import Comparison, Difference


def add_compare_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sweep compare` to the subcommands (nothing heavy is imported here)."""
    from sim_serverless_sweep.cli import _add_json, _add_location

    compare = sub.add_parser(
        "compare",
        help="B − A per matched point and metric, with 95%% intervals; flags what moved",
        description="Match the points of two runs by their parameter values and report, per "
        "point and metric, B − A with a 95% interval (paired over replicates when both "
        "runs used the same seeds, Welch otherwise); flag differences whose interval "
        "excludes 0.",
    )
    compare.add_argument("run_a", metavar="RUN_A", help="the baseline run")
    compare.add_argument("run_b", metavar="RUN_B", help="the run compared with it (B − A)")
    compare.add_argument(
        "--metric",
        action="append",
        dest="metrics",
        default=None,
        metavar="M",
        help="a shard_metrics column to compare; repeat for more (default: revenue, "
        "bookings, driver earnings, completion, utilisation, mean and p95 wait, drivers online)",
    )
    compare.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="PARAM",
        help="match points without this parameter, e.g. --ignore commission_rate to compare "
        "a commission-0.1 run with a commission-0.2 run; repeat for more (default: match on "
        "every parameter)",
    )
    _add_location(compare)
    compare.add_argument(
        "--all", action="store_true", help="list every difference, not only the flagged ones"
    )
    _add_json(compare, "the comparison")
    compare.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two runs; exit 0 whatever moved (2 for unknown runs, metrics, parameters)."""
    import duckdb

    from sim_serverless_sweep.analytics.compare import DEFAULT_METRICS, compare_runs
    from sim_serverless_sweep.cli.commands import _known_run_id, _results_problem, _results_store

    store, prefix = _results_store(args)
    for run_id in (args.run_a, args.run_b):
        _known_run_id(store, prefix, argparse.Namespace(**{**vars(args), "run_id": run_id}))
    try:
        comparison = compare_runs(
            Path(args.results),
            prefix,
            args.run_a,
            args.run_b,
            metrics=args.metrics or DEFAULT_METRICS,
            ignore=args.ignore,
        )
    except ValueError as exc:
        raise UsageError(f"compare: {exc}") from None
    except duckdb.Error as exc:
        raise _results_problem(exc) from None
    shown = [d for d in comparison.differences if args.all or d.flagged]
    if args.json:
        data: dict[str, Any] = comparison.to_dict()
        data["differences"] = [d.to_dict() for d in shown]
        print(json.dumps(data, indent=2))
        return EXIT_OK
    _print_text(comparison, shown, args.all)
    return EXIT_OK


def _print_text(comparison: Comparison, shown: list[Difference], every: bool) -> None:
    from sim_serverless_sweep.analytics.compare import difference_table, metric_table, overview
    from sim_serverless_sweep.cli.commands import print_rows

    a, b = comparison.a.run_id, comparison.b.run_id
    print(f"{b} − {a} (B − A), per matched point and metric")
    for line in overview(comparison):
        print(f"  {line}")
    header, rows = metric_table(comparison)
    print_rows(header, [tuple(r) for r in rows])
    print("* the 95% interval excludes 0 (for a metric's mean: over the points compared)")
    if not shown:
        print("no (point, metric) difference has an interval that excludes 0")
        return
    print("every difference:" if every else "flagged differences (all of them with --all):")
    header, rows = difference_table(comparison, shown)
    print_rows(header, [tuple(r) for r in rows])
