"""ShardQueue that runs shards on the local process pool in the background.

The local HTTP API's stand-in for SQS + the event source mapping: ``send`` returns at
once; a worker thread hands each batch to ``pool.run_messages`` (same ``deliver`` use
case, same retry/failure contract as the cloud queue).

A run's shard is queued or running here at most once at a time: ``send`` skips a
(run_id, shard_id) that is already queued or running, so identical concurrent resubmits
do not multiply the work. While a run has shards here the queue holds the run's runner
lease (``runtime.lease``, command ``sweep serve``) and renews it, so ``status`` tells a
live server's run from one whose server died, and a second runner of the same run into
the same results (another ``sweep serve``, or ``sweep run``) is refused while this one
lives.

``close(abort=True)`` is a stop: queued batches are dropped and the running one winds
down as a stopped ``sweep run`` does (running shards get a grace period, then their
workers are killed); ``abort_now()`` ends them at once. Workers are children of this
queue's thread with a parent-death signal, so they also end when the thread or the
process does, however it ends.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import queue
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from pathlib import Path

from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.local.pool import (
    DEFAULT_MAX_ATTEMPTS,
    RunStopped,
    ShardEvent,
    StopRequested,
    run_messages,
)
from sim_serverless_sweep.runtime import lease as leases
from sim_serverless_sweep.runtime.ports import QueueSendError
from sim_serverless_sweep.runtime.shard import Delivery

log = logging.getLogger(__name__)

LEASE_COMMAND = "sweep serve"
_Key = tuple[str, int]  # (run_id, shard_id)


@dataclass(slots=True)
class QueueReport:
    """What the queue did while it ran: shards finished, and those it left unfinished."""

    succeeded: int = 0
    failed: int = 0
    already_done: int = 0
    unfinished: dict[str, list[int]] = field(default_factory=dict)  # run_id -> shard ids

    def describe(self) -> str:
        """One line: what finished, what did not, and how to resume it."""
        finished = self.succeeded + self.failed + self.already_done
        done = f"{finished} shard(s) finished in this session, {self.failed} failed"
        if not self.unfinished:
            return f"{done}; nothing left unfinished"
        left = sum(len(ids) for ids in self.unfinished.values())
        runs = "; ".join(
            f"run {run_id}: {_ranges(ids)}" for run_id, ids in sorted(self.unfinished.items())
        )
        return f"{done}; {left} not finished ({runs}); resubmit the identical request to resume"


class PoolQueue:
    """Background shard execution; batches run one after another on ``workers`` processes."""

    def __init__(
        self,
        root: Path,
        prefix: str,
        workers: int,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.root = root
        self.prefix = prefix
        self.workers = workers
        self.max_attempts = max_attempts
        self._store = FilesystemStore(root)
        self._jobs: queue.Queue[list[ShardMessage] | None] = queue.Queue()
        self._closed = False
        # send's check-and-put and close's flag-and-sentinel must not interleave, or a batch
        # could land behind the sentinel: accepted (202) but never run. It also guards the
        # bookkeeping below, which send (request threads) and the pool thread both change.
        self._lock = threading.Lock()
        self._active: set[_Key] = set()  # queued or running
        self._unfinished: set[_Key] = set()  # left by a stop or a batch that broke
        self._leases: dict[str, leases.Lease] = {}
        self._renewed = time.monotonic()
        self._report = QueueReport()
        # Events only: abort_now runs in signal handlers, where taking _lock could deadlock.
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweep-pool-queue", daemon=True)
        self._thread.start()

    def send(self, messages: Sequence[ShardMessage]) -> None:
        with self._lock:
            if self._closed:
                # The port's error: the API answers 503 and the manifest stays for a resubmit.
                raise QueueSendError(
                    [m.shard_id for m in messages],
                    ["the local shard queue is closed; restart `sweep serve`"],
                )
            fresh: dict[_Key, ShardMessage] = {}
            for message in messages:
                key = (message.run_id, message.shard_id)
                if key not in self._active:  # already queued or running: runs once
                    fresh.setdefault(key, message)
            batches: dict[str, list[ShardMessage]] = {}
            for (run_id, _), message in fresh.items():
                batches.setdefault(run_id, []).append(message)
            self._hold_leases(batches)
            for run_id, batch in batches.items():
                keys = {(run_id, m.shard_id) for m in batch}
                self._active |= keys
                self._unfinished -= keys
                self._jobs.put(batch)

    def join(self) -> None:
        """Block until every batch sent so far has finished (tests, shutdown)."""
        self._jobs.join()

    def close(self, abort: bool = False) -> QueueReport:
        """Stop accepting work and wait for the pool thread to end.

        ``abort=False`` lets the running and queued batches finish. ``abort=True`` drops
        the queued ones and stops the running one (its shards get the pool's grace period;
        ``abort_now`` from another thread or a signal handler cuts that short). Idempotent.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._jobs.put(None)
        if abort:
            self._stop.set()
        self._thread.join()
        return self.report()

    def abort_now(self) -> None:
        """End running shards' workers at once (a second Ctrl-C); safe in a signal handler."""
        self._stop.set()
        self._abort.set()

    def busy(self) -> bool:
        """Whether any shard is queued or running."""
        with self._lock:
            return bool(self._active)

    def report(self) -> QueueReport:
        with self._lock:
            unfinished: dict[str, list[int]] = {}
            for run_id, shard_id in sorted(self._unfinished | self._active):
                unfinished.setdefault(run_id, []).append(shard_id)
            report = self._report
            return QueueReport(report.succeeded, report.failed, report.already_done, unfinished)

    # The pool thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while (batch := self._jobs.get()) is not None:
                try:
                    if not self._stop.is_set():
                        self._run(batch)
                finally:
                    self._settle(batch)
                    self._jobs.task_done()
            self._jobs.task_done()  # the sentinel
        finally:
            self._wind_up()

    def _run(self, batch: list[ShardMessage]) -> None:
        run_id = batch[0].run_id
        try:
            _spare_workers_ctrl_c()
            run_messages(
                batch,
                self.root,
                self.prefix,
                workers=self.workers,
                max_attempts=self.max_attempts,
                on_event=functools.partial(self._on_event, run_id),
                on_tick=self._tick,
                stop=self._stop,
            )
        except RunStopped:
            pass  # a stop: what it did not finish is still in _active, for _settle
        except StopRequested:
            pass  # an abort from _tick that the pool let through: a stop all the same
        except Exception:  # keep serving; the shards stay pending and resumable
            log.exception("shard batch of run %s failed; resubmit the request to resume", run_id)

    def _on_event(self, run_id: str, event: ShardEvent) -> None:
        _log_event(run_id, event)
        if event.delivery is Delivery.RETRY:
            return
        with self._lock:
            self._active.discard((run_id, event.shard_id))
            report = self._report
            if event.delivery is Delivery.SUCCEEDED:
                report.succeeded += 1
            elif event.delivery is Delivery.FAILED:
                report.failed += 1
            else:
                report.already_done += 1

    def _tick(self) -> None:
        # Called by the pool's dispatcher every TICK_S, in this thread, also while it winds
        # down after a stop: raising there is the pool's second stop (workers killed now).
        if self._abort.is_set():
            raise StopRequested(signal.SIGINT)
        if time.monotonic() - self._renewed < leases.HEARTBEAT_S:
            return
        with self._lock:
            for run_id, held in list(self._leases.items()):
                with contextlib.suppress(OSError):  # a full disk must not end the batch
                    self._leases[run_id] = leases.renew(self._store, self.prefix, held)
            self._renewed = time.monotonic()

    def _settle(self, batch: list[ShardMessage]) -> None:
        """After a batch: what it did not finish is unfinished; a run with nothing left
        here gives its lease back."""
        run_id = batch[0].run_id
        with self._lock:
            left = {(run_id, m.shard_id) for m in batch} & self._active
            self._active -= left
            self._unfinished |= left
            if not any(key[0] == run_id for key in self._active):
                self._release(run_id)

    def _wind_up(self) -> None:
        with self._lock:
            # Closed from here on, whatever ended this thread: a batch sent now would be
            # accepted (202) but never run.
            self._closed = True
            while True:  # batches a stop dropped (send cannot add any: the queue is closed)
                try:
                    dropped = self._jobs.get_nowait()
                except queue.Empty:
                    break
                self._jobs.task_done()
                for message in dropped or []:
                    key = (message.run_id, message.shard_id)
                    self._active.discard(key)
                    self._unfinished.add(key)
            for run_id in list(self._leases):
                self._release(run_id)

    # Leases (called with _lock held) ------------------------------------------------------

    def _hold_leases(self, batches: dict[str, list[ShardMessage]]) -> None:
        """Take the lease of every run not held yet; all or none (RunBusy: QueueSendError)."""
        taken: list[str] = []
        try:
            for run_id in batches:
                if run_id not in self._leases:
                    self._leases[run_id] = leases.acquire(
                        self._store, self.prefix, run_id, LEASE_COMMAND
                    )
                    taken.append(run_id)
        except leases.RunBusy as exc:
            # Another live runner has this run's shards; running them here too would
            # double the work. The run is recorded, so a later resubmit resumes it.
            self._give_back(taken)
            shard_ids = sorted(m.shard_id for batch in batches.values() for m in batch)
            raise QueueSendError(shard_ids, [str(exc)]) from None
        except BaseException:  # e.g. a read-only results folder: the app answers 503
            self._give_back(taken)
            raise

    def _give_back(self, run_ids: list[str]) -> None:
        for run_id in run_ids:  # nothing of theirs was queued: their shards are pending
            self._release(run_id, "interrupted")

    def _release(self, run_id: str, state: leases.RunnerState | None = None) -> None:
        held = self._leases.pop(run_id, None)
        if held is None:
            return
        if state is None:
            unfinished = any(key[0] == run_id for key in self._unfinished)
            state = "interrupted" if unfinished else "finished"
        with contextlib.suppress(OSError):  # e.g. a full disk: status then sees a stale lease
            leases.release(self._store, self.prefix, held, state)


def _spare_workers_ctrl_c() -> None:
    """Block SIGINT in this thread, so the workers it starts inherit the block.

    Ctrl-C reaches the terminal's whole process group: a worker still importing (before
    it ignores SIGINT) would die with a traceback. The server's main thread handles the
    stop. The resource tracker goes first: starting it unblocks SIGINT in the calling
    thread (a running tracker is left alone).
    """
    if hasattr(signal, "pthread_sigmask"):
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _log_event(run_id: str, event: ShardEvent) -> None:
    log.info(
        "run %s shard %d attempt %d: %s (%d points, %.2fs)%s",
        run_id,
        event.shard_id,
        event.attempt,
        event.delivery.value,
        event.points,
        event.seconds,
        f" — {event.error}" if event.error else "",
    )


def _ranges(ids: Sequence[int]) -> str:
    """Consecutive ids folded.

    >>> _ranges([7, 3, 4, 5])
    '3-5, 7'
    """
    parts = []
    for _, group in itertools.groupby(enumerate(sorted(ids)), lambda pair: pair[1] - pair[0]):
        run = [shard_id for _, shard_id in group]
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(parts)
