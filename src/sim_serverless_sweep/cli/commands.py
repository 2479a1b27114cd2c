"""One function per `sweep` subcommand: parse -> use case -> print.

Heavy modules (NumPy via the contract, DuckDB, rich) are imported inside the commands,
so `sweep --help` and `sweep --version` start fast and the CLI sets nothing at import.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim_serverless_sweep.cli.support import (
    DEFAULT_PREFIX,
    EXIT_INTERRUPTED_RUN,
    EXIT_OK,
    EXIT_SHARDS_FAILED,
    UsageError,
    existing_results,
    hint,
    load_request,
    read_input,
)

if TYPE_CHECKING:
    from sim_serverless_sweep.core.messages import RunManifest
    from sim_serverless_sweep.local.fs_store import FilesystemStore
    from sim_serverless_sweep.local.pool import RunStopped
    from sim_serverless_sweep.runtime.lease import Lease, RunnerState
    from sim_serverless_sweep.runtime.ports import ObjectStore

MAX_SQL_BYTES = 1024 * 1024


def prefix_of(args: argparse.Namespace) -> str:
    """--prefix, else $SWEEP_RESULTS_PREFIX, else 'sweeps'; checked against the key layout."""
    from sim_serverless_sweep.core.keys import KeyLayoutError, check_prefix

    raw = (
        args.prefix
        if args.prefix is not None
        else os.environ.get("SWEEP_RESULTS_PREFIX", DEFAULT_PREFIX)
    )
    try:
        return check_prefix(raw)
    except KeyLayoutError as exc:
        raise UsageError(f"--prefix: {exc}") from None


def cmd_plan(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.core.sharding import Plan

    request = load_request(args.request)
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
        f"(sizes {min(sizes)}-{max(sizes)})",
        highlight=False,
    )
    table = Table("point_index", *plan.names, "shard_id", title=f"first {shown} points")
    for row in info["first_points"]:
        table.add_row(*(str(row[c]) for c in ("point_index", *plan.names, "shard_id")))
    console.print(table)
    if args.estimate:
        from sim_serverless_sweep.analytics.estimate import print_estimate

        print_estimate(info["estimate"], console)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.local.fs_store import FilesystemStore
    from sim_serverless_sweep.local.memory import MemoryQueue
    from sim_serverless_sweep.local.pool import RunStopped
    from sim_serverless_sweep.local.progress import run_with_progress
    from sim_serverless_sweep.runtime import lease as leases
    from sim_serverless_sweep.runtime.submit import RunConflict, submit

    request = load_request(args.request)
    prefix = prefix_of(args)
    results = Path(args.results)
    store = FilesystemStore(results)
    queue = MemoryQueue()
    try:
        submission = submit(
            request,
            store,
            queue,
            prefix,
            force=args.force,
            verify="full" if args.verify else "size",
        )
        if submission.voided and not args.json:
            print(
                f"{request.run_id}: {len(submission.voided)} shard(s) failed verification "
                f"({'full' if args.verify else 'size'}) and run again: {submission.voided}",
                file=sys.stderr,
            )
        # Nothing to run (a finished run): no lease, so this works on a read-only folder.
        lease = (
            leases.acquire(store, prefix, request.run_id, "sweep run") if queue.messages else None
        )
    except RunConflict as exc:
        raise UsageError(f"{exc} (list runs: {hint('runs', '--results', results)})") from None
    except leases.RunBusy as exc:
        raise UsageError(
            f"{exc} (progress: {hint('status', request.run_id, '--results', results)})"
        ) from None
    except OSError as exc:
        raise _storage_problem(args, results, exc, started=False) from None
    heartbeat = _Heartbeat(store, prefix, lease) if lease is not None else None
    outcome: leases.RunnerState = "interrupted"  # unless the run ends normally
    try:
        with _sigterm_stops_the_run():
            summary = run_with_progress(
                submission,
                queue.messages,
                results,
                prefix,
                workers=args.workers,
                force=args.force,
                quiet=args.json,
                on_tick=heartbeat,
            )
        outcome = "finished"
    except RunStopped as stopped:
        return _print_stopped(args, request.run_id, results, stopped)
    except OSError as exc:
        raise _storage_problem(args, results, exc, started=True) from None
    finally:
        if heartbeat is not None:
            heartbeat.release(outcome)
    injected = set(request.failure_injection_shards)
    unexpected = [s for s in summary["failed_shard_ids"] if s not in injected]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_run_outcome(request.run_id, results, prefix, summary, unexpected)
    return EXIT_SHARDS_FAILED if unexpected or summary["pending"] else EXIT_OK


def _storage_problem(
    args: argparse.Namespace, results: Path, exc: OSError, *, started: bool
) -> UsageError:
    """Disk full, read-only folder, quota: one line saying what happened and how to resume."""
    reason = exc.strerror or str(exc)
    if not started:
        return UsageError(f"--results {results}: cannot write there ({reason}); nothing was run")
    return UsageError(
        f"--results {results}: {reason} while writing shard results; the shards without a "
        "success outcome are redone (same bytes) when you free the space and rerun "
        f"`{hint('run', args.request, '--results', results)}`"
    )


class _Heartbeat:
    """Renews the runner lease every HEARTBEAT_S while the pool works (its on_tick)."""

    def __init__(self, store: ObjectStore, prefix: str, lease: Lease) -> None:
        self.store, self.prefix, self.lease = store, prefix, lease
        self.last = time.monotonic()

    def __call__(self) -> None:
        from sim_serverless_sweep.runtime.lease import HEARTBEAT_S, renew

        if time.monotonic() - self.last >= HEARTBEAT_S:
            self.lease = renew(self.store, self.prefix, self.lease)
            self.last = time.monotonic()

    def release(self, state: RunnerState) -> None:
        from sim_serverless_sweep.runtime.lease import release

        with contextlib.suppress(OSError):  # e.g. a full disk: status then sees a stale lease
            release(self.store, self.prefix, self.lease, state)


@contextlib.contextmanager
def _sigterm_stops_the_run() -> Iterator[None]:
    """SIGTERM ends the run the way Ctrl-C does (the pool winds down, exit 143)."""
    from sim_serverless_sweep.local.pool import StopRequested

    def stop(signum: int, _frame: object) -> None:
        raise StopRequested(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_stopped(
    args: argparse.Namespace, run_id: str, results: Path, stopped: RunStopped
) -> int:
    report = stopped.report
    done = sorted({*report.succeeded, *report.already_done})
    name = "Ctrl-C" if stopped.signum == signal.SIGINT else f"signal {stopped.signum}"
    resume = hint("run", args.request, "--results", results)
    if args.request == "-":
        resume = f"the same request piped into `{resume}`"
    print(
        f"{run_id}: stopped by {name}: {len(done)} shard(s) finished in this session, "
        f"{len(report.failed)} failed, {len(report.stopped)} not finished "
        f"({_ranges(report.stopped)}); resume with: {resume}",
        file=sys.stderr,
    )
    return 128 + stopped.signum


def _ranges(ids: Sequence[int]) -> str:
    """'0-3, 7' for [0, 1, 2, 3, 7]."""
    parts: list[str] = []
    for value in ids:
        if parts and value == int(parts[-1].rpartition("-")[2]) + 1:
            parts[-1] = f"{parts[-1].partition('-')[0]}-{value}"
        else:
            parts.append(str(value))
    return ", ".join(parts) or "none"


def _print_run_outcome(
    run_id: str, results: Path, prefix: str, summary: dict[str, Any], unexpected: list[int]
) -> None:
    location = ["--results", str(results)] + (
        ["--prefix", prefix] if prefix != DEFAULT_PREFIX else []
    )
    failed = summary["failed_shard_ids"]
    if unexpected or summary["pending"]:
        print(
            f"{run_id}: {len(unexpected)} shard(s) failed that were not failure-injected "
            f"({unexpected}), {summary['pending']} pending; rerun the same command to retry them",
            file=sys.stderr,
        )
    elif failed:
        print(
            f"{run_id}: done as requested — {summary['succeeded']} shard(s) succeeded; "
            f"shard(s) {failed} failed on purpose (failure_injection_shards)",
            file=sys.stderr,
        )
    else:
        print(f"{run_id}: done — all {summary['succeeded']} shard(s) succeeded", file=sys.stderr)
    sql = f"SELECT count(*) FROM shard_metrics WHERE run_id = '{run_id}'"
    print(f"query it: {hint('query', sql, *location)}", file=sys.stderr)
    print(f"report:   {hint('report', run_id, *location)}", file=sys.stderr)


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0 when running or done as requested, 3 when a shard failed that was not
    failure-injected, 4 when interrupted (pending shards, no live runner)."""
    from sim_serverless_sweep.cli import remote
    from sim_serverless_sweep.runtime.status import run_status

    if remote.wants_api(args):
        return remote.status_remote(args)
    store, prefix = _results_store(args)
    status = run_status(store, prefix, _known_run_id(store, prefix, args))
    assert status is not None  # _known_run_id found its manifest
    data = status.to_dict()
    injected = set(status.manifest.request.failure_injection_shards)
    unexpected = [s for s in status.failed if s not in injected]
    code = (
        EXIT_INTERRUPTED_RUN
        if status.state == "interrupted"
        else EXIT_SHARDS_FAILED
        if unexpected
        else EXIT_OK
    )
    if args.json:
        print(json.dumps(data, indent=2))
        return code
    print(
        f"{data['run_id']} ({data['run_date']}): {data['state']} — "
        f"{data['succeeded']} succeeded, {data['failed']} failed, "
        f"{data['pending']} pending of {data['shard_count']} shards"
    )
    if status.failed:
        notes = [f"{s} (failure-injected)" if s in injected else str(s) for s in status.failed]
        print(f"failed shards: {', '.join(notes)}")
        if not status.pending and not unexpected:
            print("as requested: every failed shard is listed in failure_injection_shards")
    runner = status.runner
    if status.state == "interrupted" and runner is not None:
        how = "was stopped" if runner.state == "interrupted" else "stopped responding"
        print(
            f"interrupted: its runner (process {runner.pid} on {runner.host}) {how} at "
            f"{runner.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC; resume with: "
            f"{hint('run', 'REQUEST.json', '--results', args.results)} "
            "(the same request file)"
        )
    elif status.state == "running" and runner is not None:
        print(f"running in process {runner.pid} on {runner.host}")
    return code


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a run's data files against their success outcomes; exit 3 if any is damaged."""
    from sim_serverless_sweep.runtime.verify import verify_run

    store, prefix = _results_store(args)
    report = verify_run(store, prefix, _known_run_id(store, prefix, args), full=args.full)
    assert report is not None  # _known_run_id found its manifest
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return EXIT_OK if report.ok else EXIT_SHARDS_FAILED
    verdict = "ok" if report.ok else f"damaged: {report.damaged}"
    print(
        f"run {report.run_id}: {len(report.shards)} succeeded shard(s), {report.files} file(s) "
        f"checked ({'size and SHA-256' if report.mode == 'full' else 'presence and size'}): "
        f"{verdict}"
    )
    for check in report.shards:
        for problem in check.problems():
            print(f"shard {check.shard_id}: {problem}")
        if check.unrecorded:
            print(
                f"shard {check.shard_id}: {len(check.unrecorded)} file(s) checked for presence "
                "only (its outcome predates recorded checksums)"
            )
    if report.not_succeeded:
        print(f"not checked (no success outcome): shards {_ranges(report.not_succeeded)}")
    if not report.ok:
        print(
            "rerunning the run's request (`sweep run REQUEST.json`) redoes the damaged shards "
            "with the same bytes"
        )
    return EXIT_OK if report.ok else EXIT_SHARDS_FAILED


def cmd_runs(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.runtime.runs import list_runs

    store, prefix = _results_store(args)
    rows = [
        {
            "run_id": s.manifest.run_id,
            "state": s.state,
            "points": s.manifest.points,
            "shards": s.manifest.shard_count,
            "succeeded": len(s.succeeded),
            "failed": len(s.failed),
            "pending": len(s.pending),
            "run_date": s.manifest.run_date.isoformat(),
            "accepted_at": s.manifest.accepted_at.isoformat(timespec="seconds"),
        }
        for s in list_runs(store, prefix)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no runs under {Path(args.results) / prefix}")
    else:
        print_rows(list(rows[0]), [tuple(r.values()) for r in rows])
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from sim_serverless_sweep.analytics.views import connect

    if (args.sql is None) == (args.file is None):
        raise UsageError("query: give either SQL text or --file FILE, not both or neither")
    sql = args.sql if args.sql is not None else _read_sql(args.file)
    prefix = prefix_of(args)
    results = existing_results(args.results, prefix)
    try:
        con = connect(results, prefix)
    except duckdb.Error as exc:
        raise _results_problem(exc) from None
    try:
        relation = con.sql(sql)
        if relation is None:
            return EXIT_OK
        if args.format == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(relation.arrow().read_all(), sys.stdout.buffer)
        elif args.format == "json":
            rows = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
            print(json.dumps(rows, default=str, indent=2))
        else:
            print_rows(relation.columns, relation.fetchall())
    except duckdb.Error as exc:
        if _damaged_file(exc) is not None:
            raise _results_problem(exc) from None
        raise UsageError(f"query failed: {exc}") from None
    return EXIT_OK


def _damaged_file(exc: Exception) -> str | None:
    """The results file DuckDB could not read, if the error names one."""
    import re

    match = re.search(r"[Ff]ile '([^']+part-0\.parquet)'", str(exc))
    return match[1] if match else None


def _results_problem(exc: Exception) -> UsageError:
    """A damaged results file: one line naming it, and what repairs it."""
    path = _damaged_file(exc)
    reason = str(exc).splitlines()[0].split("Error: ", 1)[-1]
    if path is None:
        return UsageError(f"cannot read the results: {reason}")
    reason = reason.replace(f" '{path}'", "").replace(f"'{path}' ", "")
    return UsageError(
        f"damaged results file {path} ({reason}); `sweep verify RUN_ID` lists damaged "
        "files, and rerunning the run's request redoes their shards"
    )


def _read_sql(path: str) -> str:
    data = read_input(path, "--file", MAX_SQL_BYTES)
    if len(data) > MAX_SQL_BYTES:
        raise UsageError(f"--file {path!r}: more than {MAX_SQL_BYTES} bytes of SQL")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UsageError(f"--file {path!r}: not UTF-8 text") from None


def print_rows(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """A rich table on stdout, never squeezed when piped."""
    from rich.console import Console
    from rich.table import Table

    cells = [
        ["NULL" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v) for v in row]
        for row in rows
    ]
    table = Table(*columns, caption=f"{len(rows)} row(s)")
    for row_cells in cells:
        table.add_row(*row_cells)
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    needed = sum(widths) + 3 * len(widths) + 1
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(80, needed))
    console.print(table, highlight=False)


def cmd_report(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.analytics.report import build_report

    store, prefix = _results_store(args)
    run_id = _known_run_id(store, prefix, args)
    if args.compare is not None:
        _known_run_id(store, prefix, argparse.Namespace(**{**vars(args), "run_id": args.compare}))
    out = Path(args.out) if args.out else Path("reports") / run_id
    try:
        path = build_report(
            Path(args.results),
            prefix,
            run_id,
            out,
            max_wait=args.max_wait,
            wait_metric=args.wait_metric,
            compare=args.compare,
            compare_ignore=args.compare_ignore,
        )
    except ValueError as exc:
        raise UsageError(f"report: {exc}") from None
    except Exception as exc:
        import duckdb

        if isinstance(exc, duckdb.Error):
            raise _results_problem(exc) from None
        raise
    print(f"report written to {path}")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.runtime.runs import delete_run, run_object_keys
    from sim_serverless_sweep.runtime.status import run_status

    store, prefix = _results_store(args)
    status = run_status(store, prefix, _known_run_id(store, prefix, args))
    assert status is not None  # _known_run_id found its manifest
    manifest = status.manifest
    files = sum(1 for _ in run_object_keys(store, prefix, manifest))
    what = (
        f"run {manifest.run_id} ({status.state}, {manifest.points} points, "
        f"accepted {manifest.accepted_at:%Y-%m-%d %H:%M} UTC): {files} file(s) "
        f"under {Path(args.results) / prefix}"
    )
    if status.pending:
        what += f"; {len(status.pending)} shard(s) pending — stop any `sweep run`/`serve` on it"
    if not args.yes:
        _confirm(f"delete {what}? [y/N] ")
    deleted = delete_run(store, prefix, manifest)
    _remove_empty_folders(store, prefix, manifest)
    print(f"deleted run {manifest.run_id}: {deleted.objects} file(s)")
    return EXIT_OK


def _confirm(question: str) -> None:
    if sys.stdin is None or not sys.stdin.isatty():
        raise UsageError("delete: stdin is not a terminal, so nobody can confirm; pass --yes")
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("delete: not confirmed; nothing was deleted")


def _remove_empty_folders(store: FilesystemStore, prefix: str, manifest: RunManifest) -> None:
    from sim_serverless_sweep.core.keys import ALL_DATASETS, manifest_key, run_prefix

    folders = [run_prefix(prefix, d, manifest.run_date, manifest.run_id) for d in ALL_DATASETS]
    folders.append(manifest_key(prefix, manifest.run_id).rpartition("/")[0] + "/")
    for folder in folders:
        store.remove_empty_folders(folder)


def cmd_serve(args: argparse.Namespace) -> int:
    import errno

    from sim_serverless_sweep.local.server import serve_forever

    prefix = prefix_of(args)
    try:
        return serve_forever(args.host, args.port, Path(args.results), prefix, workers=args.workers)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"--port {args.port}: address already in use on {args.host} "
                "(another `sweep serve`?); choose another --port, or 0 for any free port"
            ) from None
        if exc.errno == errno.EACCES:
            raise UsageError(
                f"--port {args.port}: permission denied (ports below 1024 need root)"
            ) from None
        raise UsageError(
            f"--host {args.host}: cannot listen there ({exc.strerror or exc})"
        ) from None


def cmd_schema(args: argparse.Namespace) -> int:
    from sim_serverless_sweep.core.contract import request_json_schema

    print(json.dumps(request_json_schema(), indent=2))
    return EXIT_OK


def _results_store(args: argparse.Namespace) -> tuple[FilesystemStore, str]:
    from sim_serverless_sweep.local.fs_store import FilesystemStore

    prefix = prefix_of(args)
    return FilesystemStore(existing_results(args.results, prefix)), prefix


def _known_run_id(store: ObjectStore, prefix: str, args: argparse.Namespace) -> str:
    """args.run_id if it has a manifest; else UsageError with a 'did you mean'."""
    from sim_serverless_sweep.core.contract import did_you_mean
    from sim_serverless_sweep.core.keys import check_run_id, manifest_key
    from sim_serverless_sweep.runtime.runs import run_ids

    run_id: str = args.run_id
    check_run_id(run_id)
    if store.exists(manifest_key(prefix, run_id)):
        return run_id
    location = ["--results", args.results] + (["--prefix", prefix] if args.prefix else [])
    raise UsageError(
        f"run_id: no run {run_id!r} under {Path(args.results) / prefix}"
        f"{did_you_mean(run_id, run_ids(store, prefix))} (list them: {hint('runs', *location)})"
    )
