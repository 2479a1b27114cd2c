"""`sweep`: run parameter sweeps of the ride-hailing model locally, inspect and query them.

Exit codes: 0 ok; 1 internal error (a bug: please report it); 2 invalid input or
arguments, or the run is busy in another process (nothing written); 3 some shard failed
that was not failure-injected; 4 (`status`) the run was interrupted; 5 (`submit`,
`status --api`) the API is unavailable (network, timeout, 429, 5xx; the message says
whether to retry); 130 stopped by Ctrl-C, 143 by SIGTERM (rerun to resume); 141 the
reader of stdout went away.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from sim_serverless_sweep import __version__
from sim_serverless_sweep.cli import commands, compare, remote
from sim_serverless_sweep.cli.support import (
    DEFAULT_PREFIX,
    DEFAULT_RESULTS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_PIPE_CLOSED,
    UsageError,
    non_negative_int,
    port_number,
    positive_float,
    positive_int,
)

__all__ = ["build_parser", "main"]

DEBUG_ENV = "SWEEP_DEBUG"


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results",
        default=DEFAULT_RESULTS,
        metavar="DIR",
        help="results folder (default: ./%(default)s)",
    )
    parser.add_argument(
        "--prefix",
        default=None,
        help=f"key prefix inside the results folder (default: $SWEEP_RESULTS_PREFIX "
        f"or '{DEFAULT_PREFIX}')",
    )


def _add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    """The `sweep` argument parser; subcommands in the order of a workflow."""
    parser = argparse.ArgumentParser(
        prog="sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"sweep {__version__} (sim-serverless-sweep)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    schema = sub.add_parser("schema", help="print the request JSON Schema (parameters, ranges)")
    schema.set_defaults(func=commands.cmd_schema)

    plan = sub.add_parser("plan", help="show points and shards without running anything")
    plan.add_argument("request", help="request JSON file, or - for stdin")
    plan.add_argument(
        "--show",
        type=non_negative_int,
        default=10,
        metavar="N",
        help="points to decode (default: %(default)s)",
    )
    plan.add_argument(
        "--estimate",
        action="store_true",
        help="time a calibration sample and estimate run time and AWS cost",
    )
    plan.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="local workers assumed by the estimate (default: CPUs)",
    )
    _add_json(plan, "the plan")
    plan.set_defaults(func=commands.cmd_plan)

    run = sub.add_parser("run", help="run a sweep request on the embedded (local) runtime")
    run.add_argument("request", help="request JSON file, or - for stdin")
    _add_location(run)
    run.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="worker processes (default: CPUs)",
    )
    run.add_argument(
        "--force", action="store_true", help="rerun shards that already succeeded (default: skip)"
    )
    run.add_argument(
        "--verify",
        action="store_true",
        help="on a resume, check finished shards' SHA-256 checksums, not only sizes, and "
        "redo damaged ones (default: sizes only)",
    )
    _add_json(run, "a summary")
    run.set_defaults(func=commands.cmd_run)

    remote.add_submit_parser(sub)

    status = sub.add_parser("status", help="shards succeeded / failed / pending of one run")
    status.add_argument("run_id", help="the request's run_id")
    _add_location(status)
    _add_json(status, "the status")
    remote.add_api_options(status)
    status.set_defaults(func=commands.cmd_status)

    verify = sub.add_parser(
        "verify", help="check a run's data files against the sizes and checksums recorded"
    )
    verify.add_argument("run_id", help="the run to check")
    _add_location(verify)
    verify.add_argument(
        "--full", action="store_true", help="also check SHA-256 checksums (default: sizes)"
    )
    _add_json(verify, "the report")
    verify.set_defaults(func=commands.cmd_verify)

    runs = sub.add_parser("runs", help="list runs with state, points and date, newest first")
    _add_location(runs)
    _add_json(runs, "the list")
    runs.set_defaults(func=commands.cmd_runs)

    query = sub.add_parser("query", help="SQL (DuckDB) over the results' views")
    query.add_argument(
        "sql",
        nargs="?",
        default=None,
        help="SQL text (or use --file); views: shard_metrics, "
        "trip_data, snapshot_counts, shard_outcomes, point_summary",
    )
    query.add_argument(
        "--file", default=None, metavar="FILE", help="read the SQL from FILE, or - for stdin"
    )
    query.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format (default: %(default)s)",
    )
    _add_location(query)
    query.set_defaults(func=commands.cmd_query)

    _add_report(sub)
    compare.add_compare_parser(sub)

    delete = sub.add_parser(
        "delete", help="delete one run: every dataset's files and its manifest, nothing else"
    )
    delete.add_argument("run_id", help="the run to delete")
    _add_location(delete)
    delete.add_argument(
        "--yes", "-y", action="store_true", help="do not ask for confirmation (default: ask)"
    )
    delete.set_defaults(func=commands.cmd_delete)

    serve = sub.add_parser(
        "serve", help="local HTTP API (POST /sweep-run, GET /sweep-run/RUN_ID, /openapi.json)"
    )
    serve.add_argument(
        "--port",
        type=port_number,
        default=8080,
        help="TCP port, 0 for any free one (default: %(default)s)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="worker processes (default: CPUs)",
    )
    _add_location(serve)
    serve.set_defaults(func=commands.cmd_serve)
    return parser


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sim_serverless_sweep.analytics.options import WAIT_BOUND_MIN, WAIT_METRICS

    report = sub.add_parser("report", help="self-contained HTML report with charts for one run")
    report.add_argument("run_id", help="the run to report on")
    _add_location(report)
    report.add_argument(
        "--out", default=None, metavar="DIR", help="output folder (default: reports/RUN_ID)"
    )
    report.add_argument(
        "--max-wait",
        type=positive_float,
        default=WAIT_BOUND_MIN,
        metavar="MIN",
        help="wait bound in minutes for the best points per fleet size (default: %(default)s)",
    )
    report.add_argument(
        "--wait-metric",
        choices=WAIT_METRICS,
        default=WAIT_METRICS[0],
        help="which wait the bound applies to (default: %(default)s)",
    )
    report.add_argument(
        "--compare",
        default=None,
        metavar="RUN_B",
        help="add a comparison panel: RUN_B - RUN_ID per matched point with 95%% intervals, "
        "as `sweep compare` (default: none)",
    )
    report.add_argument(
        "--compare-ignore",
        action="append",
        default=[],
        metavar="PARAM",
        help="with --compare: match points without this parameter; repeat for more "
        "(default: match on every parameter)",
    )
    report.set_defaults(func=commands.cmd_report)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `sweep` with ``argv`` (default sys.argv[1:]); return the exit code."""
    # Before NumPy loads: workers are one process per core, so OpenBLAS's own thread pool
    # would only oversubscribe the cores (and it costs ~15 ms to start in every run).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe must surface here, not at interpreter exit
    except BrokenPipeError:
        # The reader went away (`sweep schema | head`): stop quietly, as cat does.
        _silence_stdout()
        return EXIT_PIPE_CLOSED
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _report_error(exc)
    return code


def _report_error(exc: Exception) -> int:
    from sim_serverless_sweep.core.contract import ConfigError, RequestError
    from sim_serverless_sweep.core.keys import KeyLayoutError

    if isinstance(exc, RequestError):
        _err(f"error: invalid request ({len(exc.problems)} problem(s)); nothing was written")
        for problem in exc.problems:
            _err(f"  - {problem.message()}")
        return EXIT_INVALID
    if isinstance(exc, UsageError | KeyLayoutError | ConfigError):
        _err(f"error: {exc}")
        return EXIT_INVALID
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        _err(f"error: {where}{exc.strerror} (check --results / --out)")
        return EXIT_INVALID
    if os.environ.get(DEBUG_ENV):
        raise exc
    _err(
        f"error: internal error ({type(exc).__name__}: {exc}); this is a bug, please report "
        f"it with the command you ran ({DEBUG_ENV}=1 shows the traceback)"
    )
    return EXIT_INTERNAL


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
