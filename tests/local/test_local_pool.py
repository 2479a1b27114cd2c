"""The process pool under worker deaths: real processes killed by real signals.

Forked workers inherit this process's modules, so a test swaps ``pool._work`` for one
that SIGKILLs its own process on chosen (shard, attempt) pairs: the crash is a real
process death at a known moment, not a simulated one.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.local import pool as pool_module
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.local.memory import MemoryQueue
from sim_serverless_sweep.local.pool import WorkerPool, run_messages, worker_pool
from sim_serverless_sweep.runtime.status import run_status
from sim_serverless_sweep.runtime.submit import submit

pytestmark = pytest.mark.chaos

REAL_WORK = pool_module._work


def messages_for(tmp_path: Path, shards: int) -> tuple[list[ShardMessage], Path]:
    body = {
        "run_id": "pool",
        "dimensions": {
            "horizon_min": [40],
            "warmup_min": [5],
            "num_drivers": list(range(3, 3 + shards)),
        },
        "shard_count": shards,
        "seed": 1,
    }
    results = tmp_path / "results"
    queue = MemoryQueue()
    submit(parse_request(json.dumps(body)), FilesystemStore(results), queue, "sweeps")
    return queue.messages, results


DEATHS: set[tuple[int, int]] = set()  # (shard_id, attempt); read by forked workers


def work_or_die(root: str, prefix: str, body: str, attempt: int, *rest: Any) -> Any:
    if (ShardMessage.from_json(body).shard_id, attempt) in DEATHS:
        os.kill(os.getpid(), signal.SIGKILL)
    return REAL_WORK(root, prefix, body, attempt, *rest)


def dying_on(deaths: set[tuple[int, int]]) -> Callable[..., Any]:
    DEATHS.clear()
    DEATHS.update(deaths)
    return work_or_die


def test_a_dead_worker_costs_only_the_attempt_it_was_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages, results = messages_for(tmp_path, 20)
    deaths = {(3, 1), (7, 1), (11, 1)}
    monkeypatch.setattr(pool_module, "_work", dying_on(deaths))
    with worker_pool(2, fork=True) as pool:
        report = run_messages(messages, results, "sweeps", workers=2, pool=pool)
    assert report.failed == {}
    assert report.succeeded == list(range(20))
    retried = {shard for shard, attempts in report.attempts.items() if attempts > 1}
    assert retried == {3, 7, 11}
    assert all(report.attempts[s] == 1 for s in range(20) if s not in retried)
    status = run_status(FilesystemStore(results), "sweeps", "pool")
    assert status is not None and status.succeeded == list(range(20))


def test_a_shard_that_kills_its_worker_every_time_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages, results = messages_for(tmp_path, 6)
    monkeypatch.setattr(pool_module, "_work", dying_on({(2, a) for a in (1, 2, 3)}))
    with worker_pool(2, fork=True) as pool:
        report = run_messages(messages, results, "sweeps", workers=2, pool=pool)
    assert list(report.failed) == [2] and "WorkerCrashed" in report.failed[2]
    assert report.succeeded == [0, 1, 3, 4, 5]
    assert report.attempts[2] == 3
    status = run_status(FilesystemStore(results), "sweeps", "pool")
    assert status is not None and status.failed == [2]


def test_a_replacement_that_dies_while_starting_is_replaced_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages, results = messages_for(tmp_path, 6)
    monkeypatch.setattr(pool_module, "_work", dying_on({(1, 1)}))
    started: list[int] = []
    real_start = WorkerPool.start_worker

    def start_and_kill_the_first_replacement(self: WorkerPool) -> Any:
        worker = real_start(self)
        started.append(worker.process.pid or 0)
        if len(started) == 3:  # 2 initial workers, then the first replacement
            os.kill(worker.process.pid or 0, signal.SIGKILL)
        return worker

    monkeypatch.setattr(WorkerPool, "start_worker", start_and_kill_the_first_replacement)
    with WorkerPool(2, fork=True) as pool:
        report = run_messages(messages, results, "sweeps", workers=2, pool=pool)
    assert len(started) >= 4
    assert report.failed == {} and report.succeeded == list(range(6))
    assert report.attempts[1] == 2


def test_no_worker_outlives_the_pool(tmp_path: Path) -> None:
    messages, results = messages_for(tmp_path, 3)
    with WorkerPool(2, fork=True) as pool:
        pids = [w.process.pid for w in pool.workers]
        run_messages(messages, results, "sweeps", workers=2, pool=pool)
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
