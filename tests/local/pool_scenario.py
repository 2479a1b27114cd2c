"""Run the pool with chosen worker deaths in a fresh process; print the report as JSON.

    python tests/local/pool_scenario.py RESULTS SHARDS DEATHS [--kill-replacement N]

DEATHS is JSON: [[shard_id, attempt], ...]. A fresh process has one thread, so the pool
forks its workers and they inherit the swapped ``pool._work``: each listed (shard,
attempt) SIGKILLs its own worker, a real process death at a known moment.
``--kill-replacement N`` SIGKILLs the N-th worker started (counting the first ones) as
soon as it exists, i.e. a replacement that dies while it starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.local import pool as pool_module
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.local.memory import MemoryQueue
from sim_serverless_sweep.runtime.submit import submit

REAL_WORK = pool_module._work
DEATHS: set[tuple[int, int]] = set()


def work_or_die(root: str, prefix: str, body: str, attempt: int, *rest: Any) -> Any:
    if (ShardMessage.from_json(body).shard_id, attempt) in DEATHS:
        os.kill(os.getpid(), signal.SIGKILL)
    return REAL_WORK(root, prefix, body, attempt, *rest)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("shards", type=int)
    parser.add_argument("deaths", type=json.loads)
    parser.add_argument("--kill-replacement", type=int, default=0)
    args = parser.parse_args()
    DEATHS.update((int(s), int(a)) for s, a in args.deaths)
    pool_module._work = work_or_die  # type: ignore[assignment]
    started: list[int] = []
    real_start = pool_module.WorkerPool.start_worker

    def start(self: pool_module.WorkerPool) -> Any:
        worker = real_start(self)
        started.append(worker.process.pid or 0)
        if len(started) == args.kill_replacement:
            os.kill(worker.process.pid or 0, signal.SIGKILL)
        return worker

    pool_module.WorkerPool.start_worker = start  # type: ignore[method-assign]
    body = {
        "run_id": "pool",
        "dimensions": {
            "horizon_min": [40],
            "warmup_min": [5],
            "num_drivers": list(range(3, 3 + args.shards)),
        },
        "shard_count": args.shards,
        "seed": 1,
    }
    queue = MemoryQueue()
    submit(parse_request(json.dumps(body)), FilesystemStore(args.results), queue, "sweeps")
    with pool_module.WorkerPool(2, fork=True) as pool:
        assert pool.fork
        report = pool_module.run_messages(
            queue.messages, args.results, "sweeps", workers=2, pool=pool
        )
    pids = [p for p in started]
    json.dump({**dataclasses.asdict(report), "started": pids}, sys.stdout)


if __name__ == "__main__":
    main()
