"""The process pool under worker deaths: real processes killed by real signals.

Each scenario runs in a fresh process (tests/local/pool_scenario.py), whose forked
workers SIGKILL themselves on chosen (shard, attempt) pairs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.runtime.status import run_status

pytestmark = pytest.mark.chaos

SCENARIO = Path(__file__).with_name("pool_scenario.py")


def scenario(
    results: Path, shards: int, deaths: list[tuple[int, int]], *extra: str
) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(SCENARIO), str(results), str(shards), json.dumps(deaths), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    report["attempts"] = {int(k): v for k, v in report["attempts"].items()}
    report["failed"] = {int(k): v for k, v in report["failed"].items()}
    return report


def test_a_dead_worker_costs_only_the_attempt_it_was_running(tmp_path: Path) -> None:
    results = tmp_path / "results"
    report = scenario(results, 20, [(3, 1), (7, 1), (11, 1)])
    assert report["failed"] == {}
    assert report["succeeded"] == list(range(20))
    retried = {shard for shard, attempts in report["attempts"].items() if attempts > 1}
    assert retried == {3, 7, 11}
    assert all(report["attempts"][s] == 1 for s in range(20) if s not in retried)
    status = run_status(FilesystemStore(results), "sweeps", "pool")
    assert status is not None and status.succeeded == list(range(20))


def test_a_shard_that_kills_its_worker_every_time_fails_alone(tmp_path: Path) -> None:
    results = tmp_path / "results"
    report = scenario(results, 6, [(2, 1), (2, 2), (2, 3)])
    assert list(report["failed"]) == [2] and "WorkerCrashed" in report["failed"][2]
    assert report["succeeded"] == [0, 1, 3, 4, 5]
    assert report["attempts"][2] == 3
    status = run_status(FilesystemStore(results), "sweeps", "pool")
    assert status is not None and status.failed == [2]


def test_a_replacement_that_dies_while_starting_is_replaced_again(tmp_path: Path) -> None:
    # Worker 3 is the first replacement (after shard 1's crash); it dies at once.
    report = scenario(tmp_path / "results", 6, [(1, 1)], "--kill-replacement", "3")
    assert len(report["started"]) >= 4
    assert report["failed"] == {} and report["succeeded"] == list(range(6))
    assert report["attempts"][1] == 2


def test_no_worker_outlives_the_pool(tmp_path: Path) -> None:
    report = scenario(tmp_path / "results", 3, [(0, 1)])
    assert len(report["started"]) == 3
    for pid in report["started"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
