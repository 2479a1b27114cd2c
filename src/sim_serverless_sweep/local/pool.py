"""Process-pool runner: the embedded stand-in for SQS + Lambda.

Each shard message is delivered to ``runtime.shard.deliver`` in a worker process,
with the same retry contract as the cloud queue: up to ``max_attempts`` deliveries,
the failure recorded on the last one.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.runtime.shard import Delivery, deliver, record_failure

DEFAULT_MAX_ATTEMPTS = 3  # equals the cloud queue's redrive maxReceiveCount


@dataclass(frozen=True, slots=True)
class ShardEvent:
    """Progress of one shard delivery, reported to the caller as it completes."""

    shard_id: int
    points: int
    attempt: int
    delivery: Delivery
    error: str | None
    seconds: float


@dataclass(slots=True)
class PoolReport:
    succeeded: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    already_done: list[int] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)


def _work(
    root: str, prefix: str, body: str, attempt: int, max_attempts: int, force: bool
) -> tuple[int, int, str, str | None, float]:
    # Runs in a worker process: rebuild the adapters there, never pickle them.
    began = time.perf_counter()
    message = ShardMessage.from_json(body)
    result = deliver(message, FilesystemStore(root), prefix, attempt, max_attempts, force=force)
    error = f"{type(result.error).__name__}: {result.error}" if result.error else None
    return (
        message.shard_id,
        len(message.point_range),
        result.delivery.value,
        error,
        time.perf_counter() - began,
    )


def default_workers() -> int:
    return os.cpu_count() or 1


def _exit_with_parent() -> None:
    # Linux prctl(PR_SET_PDEATHSIG): a worker gets SIGTERM when the process that forked
    # it dies, so killing `sweep run` alone never leaves idle workers behind.
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)


def _ready(_: int) -> int:
    return os.getpid()


@contextmanager
def worker_pool(workers: int, *, fork: bool = False) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers all exist when this returns.

    ``fork=True`` (Linux only; elsewhere spawn is used) skips each worker's ~0.3 s of
    imports; call it from the main thread before the process starts other threads (e.g. a
    progress bar), since forking a threaded process is unsafe; forked workers exit when
    the parent dies. spawn workers never inherit threads or locks.
    """
    method = "fork" if fork and sys.platform == "linux" else "spawn"
    context = multiprocessing.get_context(method)
    initializer = _exit_with_parent if method == "fork" else None
    with ProcessPoolExecutor(
        max_workers=max(1, workers), mp_context=context, initializer=initializer
    ) as pool:
        list(pool.map(_ready, range(max(1, workers))))
        yield pool


def run_messages(
    messages: Sequence[ShardMessage],
    root: Path,
    prefix: str,
    *,
    workers: int,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    force: bool = False,
    on_event: Callable[[ShardEvent], None] | None = None,
    pool: ProcessPoolExecutor | None = None,
) -> PoolReport:
    """Deliver every message until it succeeds or runs out of attempts.

    Uses ``pool`` if given (see :func:`worker_pool`), else its own spawn pool.
    """
    if not messages:
        return PoolReport()
    if pool is None:
        with worker_pool(min(workers, len(messages))) as own_pool:
            return _deliver_all(
                messages, root, prefix, max_attempts, force, on_event, own_pool, workers
            )
    return _deliver_all(messages, root, prefix, max_attempts, force, on_event, pool, workers)


class WorkerCrashed(RuntimeError):
    """A worker process died (killed, out of memory) while running the shard."""


def _deliver_all(
    messages: Sequence[ShardMessage],
    root: Path,
    prefix: str,
    max_attempts: int,
    force: bool,
    on_event: Callable[[ShardEvent], None] | None,
    pool: ProcessPoolExecutor,
    workers: int,
) -> PoolReport:
    report = PoolReport()
    running: dict[Future[tuple[int, int, str, str | None, float]], tuple[str, int]] = {}
    with ExitStack() as replacements:

        def launch(body: str, attempt: int) -> None:
            future = pool.submit(_work, str(root), prefix, body, attempt, max_attempts, force)
            running[future] = (body, attempt)

        def settle(
            shard_id: int,
            points: int,
            attempt: int,
            delivery: Delivery,
            error: str | None,
            seconds: float,
            body: str,
        ) -> None:
            report.attempts[shard_id] = attempt
            if delivery is Delivery.RETRY:
                launch(body, attempt + 1)
            elif delivery is Delivery.FAILED:
                report.failed[shard_id] = error or "unknown error"
            elif delivery is Delivery.ALREADY_DONE:
                report.already_done.append(shard_id)
            else:
                report.succeeded.append(shard_id)
            if on_event is not None:
                on_event(ShardEvent(shard_id, points, attempt, delivery, error, seconds))

        for message in messages:
            launch(message.to_json(), 1)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken: list[tuple[str, int]] = []
            for future in done:
                body, attempt = running.pop(future)
                try:
                    shard_id, points, outcome, error, seconds = future.result()
                except BrokenProcessPool:
                    broken.append((body, attempt))
                    continue
                settle(shard_id, points, attempt, Delivery(outcome), error, seconds, body)
            if not broken:
                continue
            # A dead worker breaks the whole pool: every shard in flight counts one failed
            # attempt (like a Lambda timeout), and the rest continue on a fresh pool.
            broken.extend(running.values())
            running.clear()
            pool = replacements.enter_context(worker_pool(min(workers, len(broken))))
            for body, attempt in broken:
                message = ShardMessage.from_json(body)
                crash = WorkerCrashed(f"worker process died during attempt {attempt}")
                if attempt >= max_attempts:
                    record_failure(message, FilesystemStore(root), prefix, attempt, crash)
                    delivery = Delivery.FAILED
                else:
                    delivery = Delivery.RETRY
                settle(
                    message.shard_id,
                    len(message.point_range),
                    attempt,
                    delivery,
                    f"{type(crash).__name__}: {crash}",
                    0.0,
                    body,
                )
    report.succeeded.sort()
    report.already_done.sort()
    return report
