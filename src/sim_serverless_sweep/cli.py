"""`sweep` command line: parse -> use case -> print.

Exit codes: 0 ok, 2 invalid input (nothing written), 3 some shard failed that was
not failure-injected.
"""

from __future__ import annotations

import os

# Before NumPy loads: workers are one process per core, so OpenBLAS's own thread pool
# would only oversubscribe the cores (and it costs ~15 ms to start in every run).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim_serverless_sweep.core.contract import (
    ConfigError,
    Limits,
    RequestError,
    SweepRequest,
    parse_request,
    request_json_schema,
)
from sim_serverless_sweep.core.keys import KeyLayoutError, check_prefix
from sim_serverless_sweep.core.sharding import Plan

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_SHARDS_FAILED = 3
DEFAULT_RESULTS = "sweep-results"
DEFAULT_PREFIX = "sweeps"


class UsageError(Exception):
    """Bad CLI input: printed to stderr, exit 2."""


def _load_request(path: str) -> SweepRequest:
    try:
        body = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"request file {path!r}: cannot read ({exc.strerror})") from None
    try:
        return parse_request(body, Limits.from_env(os.environ))
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _prefix(args: argparse.Namespace) -> str:
    raw = (
        args.prefix
        if args.prefix is not None
        else os.environ.get("SWEEP_RESULTS_PREFIX", DEFAULT_PREFIX)
    )
    try:
        return check_prefix(raw)
    except KeyLayoutError as exc:
        raise UsageError(f"--prefix: {exc}") from None


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.local.fs_store import FilesystemStore
    from sim_serverless_sweep.local.memory import MemoryQueue
    from sim_serverless_sweep.local.progress import run_with_progress
    from sim_serverless_sweep.runtime.submit import RunConflict, submit

    request = _load_request(args.request)
    prefix = _prefix(args)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers: {args.workers} must be >= 1")
    results = Path(args.results)
    store = FilesystemStore(results)
    queue = MemoryQueue()
    try:
        submission = submit(request, store, queue, prefix, force=args.force)
    except RunConflict as exc:
        raise UsageError(str(exc)) from None
    summary = run_with_progress(
        submission,
        queue.messages,
        results,
        prefix,
        workers=args.workers,
        force=args.force,
        quiet=args.json,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    injected = set(request.failure_injection_shards)
    unexpected = [s for s in summary["failed_shard_ids"] if s not in injected]
    return EXIT_SHARDS_FAILED if unexpected or summary["pending"] else EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers: {args.workers} must be >= 1")
    request = _load_request(args.request)
    plan = Plan.from_request(request)
    sizes = [len(plan.shard_range(s)) for s in range(plan.shard_count)]
    shown = min(args.show, plan.points)
    info: dict[str, Any] = {
        "run_id": request.run_id,
        "dimensions": plan.names,
        "points": plan.points,
        "replications": request.replications,
        "simulations": plan.points * request.replications,
        "shards": plan.shard_count,
        "shard_size_min": min(sizes),
        "shard_size_max": max(sizes),
        "failure_injection_shards": request.failure_injection_shards,
        "first_points": [
            {"point_index": i, **plan.point(i), "shard_id": plan.shard_of(i)} for i in range(shown)
        ],
    }
    if args.estimate:
        from sim_serverless_sweep.analytics.estimate import estimate_request

        info["estimate"] = estimate_request(request, workers=args.workers)
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{request.run_id}[/]: {plan.points} points x {request.replications} "
        f"replication(s) over {plan.shard_count} shards "
        f"(sizes {min(sizes)}-{max(sizes)})"
    )
    table = Table("point_index", *plan.names, "shard_id", title=f"first {shown} points")
    for row in info["first_points"]:
        table.add_row(*(str(row[c]) for c in ("point_index", *plan.names, "shard_id")))
    console.print(table)
    if args.estimate:
        from sim_serverless_sweep.analytics.estimate import print_estimate

        print_estimate(info["estimate"], console)
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from sim_serverless_sweep.analytics.views import connect

    if (args.sql is None) == (args.file is None):
        raise UsageError("query: give either SQL text or --file FILE, not both or neither")
    sql = args.sql if args.sql is not None else _read_text(args.file)
    con = connect(Path(args.results), _prefix(args))
    try:
        relation = con.sql(sql)
    except duckdb.Error as exc:
        raise UsageError(f"query failed: {exc}") from None
    if relation is None:
        return EXIT_OK
    if args.format == "csv":
        table = relation.arrow().read_all()
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sys.stdout.buffer)
    elif args.format == "json":
        rows = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
        print(json.dumps(rows, default=str, indent=2))
    else:
        _print_rows(relation.columns, relation.fetchall())
    return EXIT_OK


def _print_rows(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    cells = [
        ["NULL" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in row]
        for row in rows
    ]
    table = Table(*columns, caption=f"{len(rows)} row(s)")
    for row_cells in cells:
        table.add_row(*row_cells)
    # Never squeeze columns when piped: size the console to the widest row.
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    needed = sum(widths) + 3 * len(widths) + 1
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(80, needed))
    console.print(table)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"--file {path!r}: cannot read ({exc.strerror})") from None


def cmd_status(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.local.fs_store import FilesystemStore
    from sim_serverless_sweep.runtime.status import run_status

    status = run_status(FilesystemStore(Path(args.results)), _prefix(args), args.run_id)
    if status is None:
        raise UsageError(f"run_id: no run {args.run_id!r} under {args.results}")
    data = status.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(
            f"{data['run_id']} ({data['run_date']}): {data['state']} — "
            f"{data['succeeded']} succeeded, {data['failed']} failed, "
            f"{data['pending']} pending of {data['shard_count']} shards"
        )
        if status.failed:
            injected = set(status.manifest.request.failure_injection_shards)
            notes = [f"{s} (failure-injected)" if s in injected else str(s) for s in status.failed]
            print(f"failed shards: {', '.join(notes)}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(request_json_schema(), indent=2))
    return EXIT_OK


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results", default=DEFAULT_RESULTS, help=f"results folder (default ./{DEFAULT_RESULTS})"
    )
    parser.add_argument(
        "--prefix", default=None, help="key prefix (default $SWEEP_RESULTS_PREFIX or 'sweeps')"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep request on the embedded (local) runtime")
    run.add_argument("request", help="request JSON file")
    _add_location(run)
    run.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    run.add_argument("--force", action="store_true", help="rerun shards that already succeeded")
    run.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    run.set_defaults(func=cmd_run)

    plan = sub.add_parser("plan", help="show points and shards without running anything")
    plan.add_argument("request")
    plan.add_argument("--show", type=int, default=10, help="points to decode (default 10)")
    plan.add_argument(
        "--estimate",
        action="store_true",
        help="time a calibration sample and estimate time and AWS cost",
    )
    plan.add_argument("--workers", type=int, default=None, help="local workers for the estimate")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=cmd_plan)

    query = sub.add_parser("query", help="SQL (DuckDB) over the results")
    query.add_argument("sql", nargs="?", default=None)
    query.add_argument("--file", default=None, help="read the SQL from a file")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _add_location(query)
    query.set_defaults(func=cmd_query)

    status = sub.add_parser("status", help="shards succeeded / failed / pending of a run")
    status.add_argument("run_id")
    _add_location(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    schema = sub.add_parser("schema", help="print the request JSON Schema")
    schema.set_defaults(func=cmd_schema)

    serve = sub.add_parser("serve", help="local HTTP API (POST /sweep-run, GET /sweep-run/ID)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes")
    _add_location(serve)
    serve.set_defaults(func=cmd_serve)

    report = sub.add_parser("report", help="HTML report with charts for one run")
    report.add_argument("run_id")
    _add_location(report)
    report.add_argument("--out", default=None, help="output folder (default reports/RUN_ID)")
    report.set_defaults(func=cmd_report)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.local.server import serve_forever

    serve_forever(args.host, args.port, Path(args.results), _prefix(args), workers=args.workers)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.analytics.report import build_report

    out = Path(args.out) if args.out else Path("reports") / args.run_id
    try:
        path = build_report(Path(args.results), _prefix(args), args.run_id, out)
    except ValueError as exc:
        raise UsageError(f"report: {exc}") from None
    print(f"report written to {path}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID
    except RequestError as exc:
        _err(f"error: invalid request ({len(exc.problems)} problem(s)); nothing was written")
        for problem in exc.problems:
            _err(f"  - {problem.message()}")
        return EXIT_INVALID
    except KeyLayoutError as exc:  # a run_id or prefix given on the command line
        _err(f"error: {exc}")
        return EXIT_INVALID
    except (NotADirectoryError, FileExistsError, PermissionError) as exc:
        _err(f"error: {exc.filename or ''}: {exc.strerror} (check --results)")
        return EXIT_INVALID
    return code


if __name__ == "__main__":
    sys.exit(main())
