"""Poll a run's status until it ends, with a rich progress display on stderr."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sim_serverless_sweep.client.api import ApiClient, ApiError, ErrorKind
from sim_serverless_sweep.service.models import RunStatusBody

if TYPE_CHECKING:
    from rich.console import Console

# A watch outlives network blips: this many failed polls in a row end it.
MAX_FAILED_POLLS = 5


def watch(
    client: ApiClient,
    run_id: str,
    *,
    interval: float,
    console: Console,
    max_failed_polls: int = MAX_FAILED_POLLS,
    sleep: Callable[[float], None] = time.sleep,
) -> RunStatusBody:
    """The run's status once it is no longer running; polls every ``interval`` seconds.

    Unavailable answers (network, 5xx, throttling) are retried up to ``max_failed_polls``
    times in a row, then re-raised; any other ApiError ends the watch at once.
    KeyboardInterrupt propagates after the display is closed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(run_id, total=None, detail="asking for the status")
        failed_polls = 0
        while True:
            try:
                status = client.status(run_id)
            except ApiError as exc:
                failed_polls += 1
                if exc.kind is not ErrorKind.UNAVAILABLE or failed_polls >= max_failed_polls:
                    raise
                progress.console.print(
                    f"status poll {failed_polls}/{max_failed_polls} failed: {exc}; "
                    f"retrying in {interval:g} s"
                )
            else:
                failed_polls = 0
                progress.update(
                    task,
                    total=status.shard_count,
                    completed=status.succeeded + status.failed,
                    detail=f"{status.state}: [green]{status.succeeded} succeeded[/], "
                    f"[red]{status.failed} failed[/], {status.pending} pending",
                )
                if status.state != "running":
                    return status
            sleep(interval)
