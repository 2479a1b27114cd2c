"""Stopping `sweep run` with real signals: Ctrl-C, SIGTERM, SIGKILL, and a second runner.

Each test starts `python -m sim_serverless_sweep run` in its own process group (as a
terminal would) and signals the group or the runner, then checks the exit code, the
messages, what `status` says, and that a rerun resumes to byte-identical data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sim_serverless_sweep.local.pool import STOP_GRACE_S

pytestmark = pytest.mark.chaos

RUN = [sys.executable, "-m", "sim_serverless_sweep", "run"]


def request(tmp_path: Path, *, replications: int, shards: int = 6) -> Path:
    body = {
        "run_id": "stop-me",
        "dimensions": {"horizon_min": [720], "num_drivers": list(range(40, 40 + 2 * shards, 2))},
        "shard_count": shards,
        "replications": replications,
        "seed": 9,
    }
    path = tmp_path / "req.json"
    path.write_text(json.dumps(body))
    return path


def start(req: Path, results: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*RUN, str(req), "--results", str(results), "--workers", "2", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def outcomes(results: Path) -> int:
    return len(list((results / "sweeps" / "dataset=shard_outcomes").rglob("part-0.parquet")))


def data_bytes(results: Path) -> dict[str, bytes]:
    return {
        p.relative_to(results).as_posix(): p.read_bytes()
        for p in results.rglob("part-0.parquet")
        if "dataset=shard_outcomes" not in p.as_posix()
    }


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: its parent has not reaped it yet.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


def status(results: Path) -> tuple[int, dict[str, object]]:
    proc = subprocess.run(
        [*RUN[:-1], "status", "stop-me", "--results", str(results), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize(
    ("signum", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "signal 15")]
)
def test_a_stop_ends_the_run_says_how_to_resume_and_the_rerun_is_identical(
    tmp_path: Path, signum: int, code: int, name: str
) -> None:
    req = request(tmp_path, replications=6, shards=12)
    results = tmp_path / "results"
    proc = start(req, results)
    wait_for(lambda: outcomes(results) >= 2)
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=STOP_GRACE_S + 30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert f"stop-me: stopped by {name}" in err and "resume with:" in err
    resume = err.split("resume with: ", 1)[1].strip()
    done = outcomes(results)
    assert 2 <= done < 12, "the stop must land mid-run"

    exit_code, data = status(results)
    assert (exit_code, data["state"]) == (4, "interrupted")
    assert isinstance(data["runner"], dict) and data["runner"]["state"] == "interrupted"

    rerun = subprocess.run(resume, shell=True, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    reference = tmp_path / "reference"
    whole = subprocess.run(
        [*RUN, str(req), "--results", str(reference), "--json"], capture_output=True, timeout=300
    )
    assert whole.returncode == 0
    assert data_bytes(results) == data_bytes(reference)
    assert status(results)[1]["state"] == "succeeded"


def test_a_second_ctrl_c_aborts_at_once(tmp_path: Path) -> None:
    req = request(tmp_path, replications=150, shards=4)  # shards far longer than the grace
    results = tmp_path / "results"
    proc = start(req, results)
    wait_for(lambda: (results / "sweeps/manifests/run_id=stop-me/runner.json").exists())
    time.sleep(1.0)  # both workers are inside a shard
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    second = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - second < STOP_GRACE_S - 1, "the second Ctrl-C waited for the grace"
    assert proc.returncode == 130 and "Traceback" not in err
    assert "4 not finished" in err


def test_a_second_runner_of_a_live_run_is_refused(tmp_path: Path) -> None:
    req = request(tmp_path, replications=60, shards=4)
    results = tmp_path / "results"
    first = start(req, results)
    try:
        wait_for(lambda: (results / "sweeps/manifests/run_id=stop-me/runner.json").exists())
        second = subprocess.run(
            [*RUN, str(req), "--results", str(results)], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        assert f"already being run by process {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert status(results)[1]["state"] == "running"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


def test_a_killed_runner_leaves_no_workers_and_status_says_interrupted(tmp_path: Path) -> None:
    req = request(tmp_path, replications=60, shards=4)
    results = tmp_path / "results"
    runner = start(req, results)
    wait_for(lambda: len(children_of(runner.pid)) >= 2)
    first_workers = children_of(runner.pid)
    os.kill(first_workers[0], signal.SIGKILL)  # a replacement worker gets started
    wait_for(lambda: len([c for c in children_of(runner.pid) if c not in first_workers]) >= 1)
    workers = children_of(runner.pid)
    runner.send_signal(signal.SIGKILL)  # the runner alone, not its group
    runner.wait()
    wait_for(lambda: not any(alive(w) for w in workers), timeout=10)
    exit_code, data = status(results)
    assert (exit_code, data["state"]) == (4, "interrupted")
