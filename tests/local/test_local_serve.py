"""Stopping `sweep serve` with real signals mid-batch: Ctrl-C, SIGTERM, a second Ctrl-C,
SIGKILL.

Each test starts `serve_forever` (what `sweep serve` runs) in its own process group with
two workers, submits a run over HTTP, signals the group (as a terminal's Ctrl-C does) or
the server alone, then checks the exit code, the one-line message, that queued shards were
not run, that no worker or resource-tracker process outlives the server, what `sweep
status` says, and that an identical resubmit to a new server finishes the run with the
bytes of a clean run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sim_serverless_sweep.local.pool import STOP_GRACE_S

pytestmark = pytest.mark.chaos

# serve_forever's return value is the exit code (what `sweep serve` exits with).
SERVE = (
    "import sys; from pathlib import Path; "
    "from sim_serverless_sweep.local.server import serve_forever; "
    "sys.exit(serve_forever('127.0.0.1', 0, Path(sys.argv[1]), 'sweeps', 2))"
)
SWEEP = [sys.executable, "-m", "sim_serverless_sweep"]
RUN_ID = "serve-stop"


def sweep_request(*, replications: int, shards: int = 6) -> dict[str, Any]:
    return {
        "run_id": RUN_ID,
        "dimensions": {"horizon_min": [720], "num_drivers": list(range(40, 40 + 2 * shards, 2))},
        "shard_count": shards,
        "replications": replications,
        "seed": 3,
    }


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    results: Path

    def post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.url}/sweep-run",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/sweep-run/{RUN_ID}", timeout=30) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    def descendants(self) -> set[int]:
        """Children of every thread (workers are the pool thread's), then theirs."""
        found: set[int] = set()
        todo = [self.process.pid]
        while todo:
            pid = todo.pop()
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    new = {int(c) for c in children.read_text().split()} - found
                except FileNotFoundError:  # that thread (e.g. a request's) just ended
                    continue
                found |= new
                todo.extend(new)
        return found

    def stop(self, signum: int, *, group: bool = True) -> tuple[str, float]:
        """Signal it; its stderr and how long it took to exit."""
        began = time.monotonic()
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=STOP_GRACE_S + 30)
        return err, time.monotonic() - began


def start(results: Path) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAX_", "SWEEP_"))}
    # stderr is a pipe read at the end: a few requests and shards stay far below its size.
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(results)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+) ", first)
    assert match, first
    return Server(process, match.group(1), results)


@pytest.fixture
def serve() -> Iterator[Callable[[Path], Server]]:
    started: list[Server] = []

    def make(results: Path) -> Server:
        server = start(results)
        started.append(server)
        return server

    yield make
    for server in started:  # a failed test must not leave a server running
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.communicate()


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def outcome_files(results: Path) -> list[Path]:
    return sorted((results / "sweeps" / "dataset=shard_outcomes").rglob("part-0.parquet"))


def living(pids: set[int]) -> set[int]:
    """The pids still running (a zombie has ended: only its parent has not reaped it)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def status(results: Path) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [*SWEEP, "status", RUN_ID, "--results", str(results), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, json.loads(proc.stdout)


def data_files(results: Path) -> dict[str, bytes]:
    root = results / "sweeps"
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("part-0.parquet")
        if "dataset=shard_outcomes" not in path.parts
    }


def busy_workers(server: Server, count: int) -> set[int]:
    """Wait until the server has ``count`` workers besides the resource tracker."""

    def workers() -> set[int]:
        found = set()
        for pid in server.descendants():
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(pid)
            except FileNotFoundError:  # ended meanwhile
                continue
        return found

    wait_for(lambda: len(workers()) >= count)
    return server.descendants()


def test_ctrl_c_stops_queued_shards_says_how_to_resume_and_the_resubmit_is_identical(
    tmp_path: Path, serve: Callable[[Path], Server]
) -> None:
    results = tmp_path / "results"
    body = sweep_request(replications=4)  # 6 shards of a fraction of a second, on 2 workers
    server = serve(results)
    assert server.post(body)[0] == 202
    assert server.status()["runner"]["command"] == "sweep serve"  # a live lease
    children = busy_workers(server, 2)
    wait_for(lambda: len(outcome_files(results)) >= 1)

    err, took = server.stop(signal.SIGINT)  # at once: shards are still queued
    assert server.process.returncode == 130, err
    assert took < STOP_GRACE_S + 5, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    match = re.fullmatch(
        r"sweep serve: stopped by Ctrl-C: (\d) shard\(s\) finished in this session, 0 failed; "
        r"(\d) not finished \(run serve-stop: [0-9, -]+\); resubmit the identical request "
        r"to resume",
        line,
    )
    assert match, line
    finished, unfinished = int(match.group(1)), int(match.group(2))
    # Queued shards were dropped, not run: what finished is what the line says.
    assert (len(outcome_files(results)), finished + unfinished) == (finished, 6)
    assert unfinished >= 1
    wait_for(lambda: not living(children), timeout=10)

    code, data = status(results)
    assert (code, data["state"], data["runner"]["state"]) == (4, "interrupted", "interrupted")

    again = serve(results)
    status_code, accepted = again.post(body)
    assert status_code == 202
    assert len(accepted["dispatched_shards"]) == unfinished and not accepted["created"]
    wait_for(lambda: again.status()["state"] == "succeeded")
    again.stop(signal.SIGINT)
    reference = tmp_path / "reference"
    request_file = tmp_path / "req.json"
    request_file.write_text(json.dumps(body))
    clean = subprocess.run(
        [*SWEEP, "run", str(request_file), "--results", str(reference), "--workers", "2"],
        capture_output=True,
        timeout=120,
    )
    assert clean.returncode == 0, clean.stderr
    assert data_files(results) == data_files(reference)


def test_sigterm_exits_143_and_leaves_no_process(
    tmp_path: Path, serve: Callable[[Path], Server]
) -> None:
    results = tmp_path / "results"
    server = serve(results)
    assert server.post(sweep_request(replications=4, shards=4))[0] == 202
    children = busy_workers(server, 2)
    assert len(children) == 3  # two workers and multiprocessing's resource tracker
    err, took = server.stop(signal.SIGTERM, group=False)  # what a service manager sends
    assert server.process.returncode == 143, err
    assert took < STOP_GRACE_S + 5 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("sweep serve: stopped by SIGTERM: ")
    wait_for(lambda: not living(children), timeout=10)


def long_shards_running(
    tmp_path: Path, serve: Callable[[Path], Server]
) -> tuple[Server, set[int], Path]:
    """A server running 4 shards far longer than the grace period; its processes."""
    results = tmp_path / "results"
    server = serve(results)
    assert server.post(sweep_request(replications=150, shards=4))[0] == 202
    return server, busy_workers(server, 2), results


def test_a_second_ctrl_c_ends_running_shards_at_once(
    tmp_path: Path, serve: Callable[[Path], Server]
) -> None:
    server, children, results = long_shards_running(tmp_path, serve)
    # At once: Ctrl-C must not kill workers still importing (each would print a traceback).
    os.killpg(server.process.pid, signal.SIGINT)
    time.sleep(0.3)
    err, took = server.stop(signal.SIGINT)
    assert took < STOP_GRACE_S - 2, f"the second Ctrl-C waited for the grace: {took:.1f}s"
    assert server.process.returncode == 130 and "Traceback" not in err, err
    assert "0 shard(s) finished in this session, 0 failed; 4 not finished" in err
    wait_for(lambda: not living(children), timeout=10)
    assert outcome_files(results) == []


def test_sigkill_of_the_server_leaves_no_worker_and_status_says_interrupted(
    tmp_path: Path, serve: Callable[[Path], Server]
) -> None:
    server, children, results = long_shards_running(tmp_path, serve)
    server.process.kill()  # the server alone: its workers are not in the signal's reach
    server.process.communicate(timeout=30)
    # The workers' parent-death signal ends them; then the tracker sees its pipe close.
    wait_for(lambda: not living(children), timeout=10)
    code, data = status(results)
    assert (code, data["state"]) == (4, "interrupted")
    assert data["runner"]["state"] == "running" and not data["runner"]["live"]
