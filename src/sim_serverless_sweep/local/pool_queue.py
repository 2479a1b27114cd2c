"""ShardQueue that runs shards on the local process pool in the background.

The local HTTP API's stand-in for SQS + the event source mapping: ``send`` returns at
once; a worker thread hands each batch to ``pool.run_messages`` (same ``deliver`` use
case, same retry/failure contract as the cloud queue).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from pathlib import Path

from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.local.pool import DEFAULT_MAX_ATTEMPTS, ShardEvent, run_messages
from sim_serverless_sweep.runtime.ports import QueueSendError

log = logging.getLogger(__name__)


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
        self.errors: list[BaseException] = []
        self._jobs: queue.Queue[list[ShardMessage] | None] = queue.Queue()
        self._closed = False
        # send's check-and-put and close's flag-and-sentinel must not interleave, or a batch
        # could land behind the sentinel: accepted (202) but never run.
        self._lock = threading.Lock()
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
            if messages:
                self._jobs.put(list(messages))

    def join(self) -> None:
        """Block until every batch sent so far has finished (tests, shutdown)."""
        self._jobs.join()

    def close(self) -> None:
        """Stop accepting work; let the running and queued batches finish."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._jobs.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            batch = self._jobs.get()
            try:
                if batch is None:
                    return
                run_messages(
                    batch,
                    self.root,
                    self.prefix,
                    workers=self.workers,
                    max_attempts=self.max_attempts,
                    on_event=_log_event,
                )
            except Exception as exc:  # keep serving; the shards stay pending and resumable
                self.errors.append(exc)
                log.exception(
                    "shard batch of run %s failed; resubmit the request to resume",
                    batch[0].run_id if batch else "?",
                )
            finally:
                self._jobs.task_done()


def _log_event(event: ShardEvent) -> None:
    log.info(
        "shard %d attempt %d: %s (%d points, %.2fs)%s",
        event.shard_id,
        event.attempt,
        event.delivery.value,
        event.points,
        event.seconds,
        f" — {event.error}" if event.error else "",
    )
