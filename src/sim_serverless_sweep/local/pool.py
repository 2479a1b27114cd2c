"""Process-pool runner: the embedded stand-in for SQS + Lambda.

Each shard message is delivered to ``runtime.shard.deliver`` in a worker process,
with the same retry contract as the cloud queue: up to ``max_attempts`` deliveries,
the failure recorded on the last one.

Every worker runs one shard at a time over its own pipe, so the runner always knows
which shard a worker holds: a worker that dies (SIGKILL, out of memory) costs exactly
the attempt it was running, never a queued shard or another worker's shard, and is
replaced on its own. A stop (Ctrl-C, SIGTERM, or ``stop`` set) ends dispatching, gives
the running shards a short grace period, then ends the workers; a second stop ends
them at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.runtime.shard import Delivery, deliver, record_failure

DEFAULT_MAX_ATTEMPTS = 3  # equals the cloud queue's redrive maxReceiveCount
STOP_GRACE_S = 5.0  # after a first stop, running shards get this long to finish
TICK_S = 0.25  # how often the runner wakes to check stop requests and call on_tick
MAX_START_FAILURES = 5  # workers dying before their first task, in a row: give up

WorkResult = tuple[int, int, str, str | None, float]


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
    # Shards not finished because the run was stopped (never started, or cut short).
    stopped: list[int] = field(default_factory=list)


class WorkerCrashed(RuntimeError):
    """A worker process died (killed, out of memory) while running the shard."""


class WorkersKeepDying(RuntimeError):
    """Worker processes die before running anything: the machine cannot host them."""


class StopRequested(BaseException):
    """Raised in the runner's thread by a SIGTERM handler (SIGINT raises KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class RunStopped(Exception):
    """The run was stopped before every shard finished; ``report`` says what did."""

    def __init__(self, report: PoolReport, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.report = report
        self.signum = signum


def _work(
    root: str, prefix: str, body: str, attempt: int, max_attempts: int, force: bool
) -> WorkResult:
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
    # Linux prctl(PR_SET_PDEATHSIG): the worker gets SIGKILL when the thread that started
    # it ends, so a killed runner never leaves workers behind, however it died.
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def _worker_main(conn: Connection, parent_pid: int) -> None:
    _exit_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    # Ctrl-C reaches the whole process group; the runner decides what a stop means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            reply: tuple[str, Any] = ("done", _work(*task))
        except Exception as exc:  # e.g. the disk is full while recording the failure
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    task: tuple[str, int] | None = None  # (message body, attempt) being run
    reaped: bool = False


class WorkerPool:
    """Worker processes that each run one shard at a time; use as a context manager.

    ``fork=True`` (Linux only) skips each worker's ~0.3 s of imports; it is used only
    while this process has a single thread (forking a threaded process is unsafe), so
    replacements started after a progress bar's thread exists are spawned.
    """

    def __init__(self, size: int, *, fork: bool = False) -> None:
        self.fork = fork and sys.platform == "linux"
        self.workers: list[_Worker] = []
        self._owner = threading.get_ident()
        for _ in range(max(1, size)):
            self.workers.append(self.start_worker())

    def start_worker(self) -> _Worker:
        can_fork = self.fork and threading.active_count() == 1
        context: Any = multiprocessing.get_context("fork" if can_fork else "spawn")
        if not can_fork:
            # Started first: starting it later would unblock SIGINT in this thread again.
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=_worker_main, args=(child_end, os.getpid()), name="sweep-worker", daemon=True
        )
        # The child inherits a blocked SIGINT, so a Ctrl-C while it imports cannot kill it
        # with a traceback; it ignores SIGINT for good once running (see _worker_main).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child_end.close()
        return _Worker(process, parent_end)

    def replace(self, worker: _Worker) -> _Worker:
        self._reap(worker)
        fresh = self.start_worker()
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def terminate(self) -> None:
        """End every worker now (SIGKILL)."""
        for worker in self.workers:
            if not worker.reaped and worker.process.is_alive():
                worker.process.kill()
        for worker in self.workers:
            self._reap(worker)

    def close(self, timeout: float = 10.0) -> None:
        """Ask idle workers to exit; kill whatever is still running after ``timeout``."""
        live = [w for w in self.workers if not w.reaped]
        for worker in live:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        deadline = time.monotonic() + timeout
        for worker in live:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        self.terminate()

    @staticmethod
    def _reap(worker: _Worker) -> None:
        if worker.reaped:
            return
        worker.reaped = True
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        with contextlib.suppress(ValueError):
            worker.process.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.terminate()


@contextlib.contextmanager
def worker_pool(workers: int, *, fork: bool = False) -> Iterator[WorkerPool]:
    """A started :class:`WorkerPool` of ``workers`` processes, ended on exit."""
    with WorkerPool(workers, fork=fork) as pool:
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
    on_tick: Callable[[], None] | None = None,
    pool: WorkerPool | None = None,
    stop: threading.Event | None = None,
) -> PoolReport:
    """Deliver every message until it succeeds or runs out of attempts.

    Uses ``pool`` if given (see :func:`worker_pool`), else its own spawned pool.
    ``on_tick`` is called about every TICK_S seconds (e.g. to renew a lease). A stop
    (KeyboardInterrupt, StopRequested, or ``stop`` set) raises :class:`RunStopped`.
    """
    if not messages:
        return PoolReport()
    if pool is None:
        with worker_pool(min(workers, len(messages))) as own_pool:
            return _Dispatcher(
                messages, root, prefix, max_attempts, force, on_event, on_tick, own_pool, stop
            ).run()
    return _Dispatcher(
        messages, root, prefix, max_attempts, force, on_event, on_tick, pool, stop
    ).run()


class _Dispatcher:
    def __init__(
        self,
        messages: Sequence[ShardMessage],
        root: Path,
        prefix: str,
        max_attempts: int,
        force: bool,
        on_event: Callable[[ShardEvent], None] | None,
        on_tick: Callable[[], None] | None,
        pool: WorkerPool,
        stop: threading.Event | None,
    ) -> None:
        self.root, self.prefix = root, prefix
        self.max_attempts, self.force = max_attempts, force
        self.on_event, self.on_tick = on_event, on_tick
        self.pool, self.stop = pool, stop
        self.report = PoolReport()
        self.queued: deque[tuple[str, int]] = deque((m.to_json(), 1) for m in messages)
        self.cut_short: list[str] = []  # bodies of shards ended by a stop mid-run
        self.start_failures = 0

    def run(self) -> PoolReport:
        signum: int | None = None
        try:
            self._loop(until=None)
        except KeyboardInterrupt:
            signum = signal.SIGINT
        except StopRequested as exc:
            signum = exc.signum
        if signum is None and self.stop is not None and self.stop.is_set():
            signum = signal.SIGTERM
        if signum is None:
            self.report.succeeded.sort()
            self.report.already_done.sort()
            return self.report
        self._wind_down()
        raise RunStopped(self._stopped_report(), signum)

    def _busy(self) -> list[_Worker]:
        return [w for w in self.pool.workers if w.task is not None]

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _loop(self, until: float | None) -> None:
        last_tick = 0.0
        while self._busy() or (self.queued and until is None):
            if until is None and self._stopping():
                return
            if until is None:
                self._dispatch()
            now = time.monotonic()
            if until is not None and now >= until:
                return
            if self.on_tick is not None and now - last_tick >= TICK_S:
                self.on_tick()
                last_tick = now
            busy = self._busy()
            handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            timeout = TICK_S if until is None else max(0.0, min(TICK_S, until - now))
            ready = set(wait(handles, timeout=timeout))
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    self._collect(worker, counting=until is None)

    def _dispatch(self) -> None:
        for worker in self.pool.workers:
            if worker.task is None and self.queued:
                body, attempt = self.queued.popleft()
                try:
                    worker.conn.send(
                        (str(self.root), self.prefix, body, attempt, self.max_attempts, self.force)
                    )
                except OSError:  # died while idle (e.g. killed); replace it, keep the task
                    self.queued.appendleft((body, attempt))
                    self._replace(self.pool.workers.index(worker), ran_task=False)
                    continue
                worker.task = (body, attempt)

    def _collect(self, worker: _Worker, *, counting: bool) -> None:
        assert worker.task is not None
        body, attempt = worker.task
        try:
            kind, value = worker.conn.recv()
        except (EOFError, OSError):
            worker.task = None
            if not counting:  # winding down: no replacement, the shard is simply unfinished
                self.cut_short.append(body)
                return
            self._replace(self.pool.workers.index(worker), ran_task=True)
            self._crashed(body, attempt)
            return
        worker.task = None
        self.start_failures = 0
        if kind == "error":
            self._attempt_failed(body, attempt, str(value))
            return
        shard_id, points, outcome, error, seconds = value
        self._settle(shard_id, points, attempt, Delivery(outcome), error, seconds, body)

    def _replace(self, index: int, *, ran_task: bool) -> None:
        if not ran_task:
            self.start_failures += 1
            if self.start_failures > MAX_START_FAILURES:
                raise WorkersKeepDying(
                    f"{self.start_failures} worker processes died before running a shard"
                )
        self.pool.replace(self.pool.workers[index])

    def _crashed(self, body: str, attempt: int) -> None:
        crash = WorkerCrashed(f"worker process died during attempt {attempt}")
        self._attempt_failed(body, attempt, f"{type(crash).__name__}: {crash}", crash)

    def _attempt_failed(
        self, body: str, attempt: int, error: str, exc: BaseException | None = None
    ) -> None:
        message = ShardMessage.from_json(body)
        delivery = Delivery.RETRY
        if attempt >= self.max_attempts:
            failure = exc or WorkerCrashed(error)
            record_failure(message, FilesystemStore(self.root), self.prefix, attempt, failure)
            delivery = Delivery.FAILED
        self._settle(
            message.shard_id, len(message.point_range), attempt, delivery, error, 0.0, body
        )

    def _settle(
        self,
        shard_id: int,
        points: int,
        attempt: int,
        delivery: Delivery,
        error: str | None,
        seconds: float,
        body: str,
    ) -> None:
        report = self.report
        report.attempts[shard_id] = attempt
        if delivery is Delivery.RETRY:
            self.queued.append((body, attempt + 1))
        elif delivery is Delivery.FAILED:
            report.failed[shard_id] = error or "unknown error"
        elif delivery is Delivery.ALREADY_DONE:
            report.already_done.append(shard_id)
        else:
            report.succeeded.append(shard_id)
        if self.on_event is not None:
            self.on_event(ShardEvent(shard_id, points, attempt, delivery, error, seconds))

    def _wind_down(self) -> None:
        # First stop: no new work; running shards may finish within the grace period.
        # A second stop (or the grace running out) ends the workers at once.
        try:
            self._loop(until=time.monotonic() + STOP_GRACE_S)
        except (KeyboardInterrupt, StopRequested):
            pass
        finally:
            running = self._busy()
            for worker in running:
                assert worker.task is not None
                self.cut_short.append(worker.task[0])
                worker.task = None
            if running:
                self.pool.terminate()

    def _stopped_report(self) -> PoolReport:
        report = self.report
        finished = {*report.succeeded, *report.failed, *report.already_done}
        bodies = [body for body, _ in self.queued] + self.cut_short
        unfinished = {ShardMessage.from_json(body).shard_id for body in bodies}
        report.stopped = sorted(unfinished - finished)
        report.succeeded.sort()
        report.already_done.sort()
        return report
