"""Rich progress and summary around the pool runner (stderr; stdout stays for --json).

rich is imported only when something is shown: a `--json` run would otherwise pay its
~25 ms import before the first shard starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sim_serverless_sweep.core.messages import RunManifest, ShardMessage
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.local.pool import ShardEvent, default_workers, run_messages, worker_pool
from sim_serverless_sweep.runtime.shard import Delivery
from sim_serverless_sweep.runtime.status import run_status
from sim_serverless_sweep.runtime.submit import Submission

SUMMARY_ROWS = (
    "run_date",
    "points",
    "shards",
    "succeeded",
    "failed",
    "pending",
    "failed_shard_ids",
    "results_path",
)


def run_with_progress(
    submission: Submission,
    messages: Sequence[ShardMessage],
    results: Path,
    prefix: str,
    *,
    workers: int | None,
    force: bool,
    quiet: bool,
    on_tick: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run the messages (with a progress bar unless quiet); return the run's JSON summary.

    A stop (Ctrl-C, SIGTERM) raises ``pool.RunStopped`` once the workers have ended.
    """
    worker_count = workers or default_workers()
    pool_size = min(worker_count, max(1, len(messages)))
    if quiet:
        with worker_pool(pool_size, fork=True) as pool:
            run_messages(
                messages,
                results,
                prefix,
                workers=worker_count,
                force=force,
                pool=pool,
                on_tick=on_tick,
            )
        return _summary(submission.manifest, results, prefix)
    return _run_shown(
        submission, messages, results, prefix, worker_count, pool_size, force, on_tick
    )


def _run_shown(
    submission: Submission,
    messages: Sequence[ShardMessage],
    results: Path,
    prefix: str,
    worker_count: int,
    pool_size: int,
    force: bool,
    on_tick: Callable[[], None] | None,
) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    console = Console(stderr=True)
    manifest = submission.manifest
    total_points = sum(len(m.point_range) for m in messages)
    console.print(
        f"[bold]{manifest.run_id}[/] ({manifest.run_date}): {manifest.points} points, "
        f"{manifest.shard_count} shards; running {len(messages)} shard(s) on "
        f"{worker_count} worker(s)"
        + (
            f", {len(submission.already_succeeded)} already done"
            if submission.already_succeeded
            else ""
        )
    )
    # Fork the workers before rich starts its refresh thread (see worker_pool).
    with (
        worker_pool(pool_size, fork=True) as pool,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as progress,
    ):
        shards_task = progress.add_task("shards", total=len(messages))
        points_task = progress.add_task("points", total=total_points)

        def on_event(event: ShardEvent) -> None:
            if event.delivery is Delivery.RETRY:
                progress.console.print(
                    f"shard {event.shard_id}: attempt {event.attempt} "
                    f"failed ({event.error}); retrying"
                )
                return
            progress.advance(shards_task)
            progress.advance(points_task, event.points)
            if event.delivery is Delivery.FAILED:
                progress.console.print(
                    f"[red]shard {event.shard_id}: failed after "
                    f"{event.attempt} attempt(s): {event.error}[/]"
                )

        run_messages(
            messages,
            results,
            prefix,
            workers=worker_count,
            force=force,
            on_event=on_event,
            on_tick=on_tick,
            pool=pool,
        )

    summary = _summary(manifest, results, prefix)
    table = Table(title=f"run {manifest.run_id}", show_header=False)
    for key in SUMMARY_ROWS:
        table.add_row(key, str(summary[key]))
    console.print(table)
    return summary


def _summary(manifest: RunManifest, results: Path, prefix: str) -> dict[str, Any]:
    status = run_status(FilesystemStore(results), prefix, manifest.run_id)
    assert status is not None  # the manifest was written by submit
    return {
        "run_id": manifest.run_id,
        "run_date": manifest.run_date.isoformat(),
        "points": manifest.points,
        "shards": manifest.shard_count,
        "succeeded": len(status.succeeded),
        "failed": len(status.failed),
        "pending": len(status.pending),
        "failed_shard_ids": status.failed,
        "results_path": str((results / prefix).resolve()) if prefix else str(results.resolve()),
    }
