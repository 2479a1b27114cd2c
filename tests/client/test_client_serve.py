"""The whole client path against a real `sweep serve` (unsigned, as every loopback URL is)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .conftest import ENTRY, FAKE_AWS, Served, clean_env

Sweep = Callable[..., subprocess.CompletedProcess[str]]
WriteRequest = Callable[..., Path]
SWEEP_MODULE = [sys.executable, "-m", "sim_serverless_sweep"]
WATCH = [sys.executable, str(ENTRY)]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_submit_then_watch_until_the_run_ends(
    sweep: Sweep, served: Served, write_request: WriteRequest
) -> None:
    request = write_request()
    submitted = sweep("submit", str(request), "--api", served.url)
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.startswith("remote-tiny (")
    assert "accepted (202, new run) — 2 points, 2 shards; 2 dispatched" in submitted.stdout
    watch_hint = submitted.stderr.strip().removeprefix("watch it: ")
    assert watch_hint.endswith(f"status remote-tiny --api {served.url} --watch")

    watched = sweep("status", "remote-tiny", "--api", served.url, "--watch", "--interval", "0.2")
    assert watched.returncode == 0, watched.stderr
    assert re.fullmatch(
        r"remote-tiny \(\d{4}-\d\d-\d\d\): succeeded — 2 succeeded, 0 failed, 0 pending "
        r"of 2 shards\n",
        watched.stdout,
    )
    assert "2/2" in watched.stderr  # the progress display, on stderr
    assert len(list(served.results.glob("sweeps/dataset=shard_metrics/**/*.parquet"))) == 2

    as_json = sweep("status", "remote-tiny", "--api", served.url, "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["succeeded_shards"] == [0, 1]

    again = sweep("submit", str(request), "--api", served.url)
    assert again.returncode == 0
    assert "accepted (200, resubmitted) — 2 points, 2 shards; 0 dispatched, 2 already" in (
        again.stdout
    )


def test_a_changed_resubmit_is_a_409_naming_what_differs(
    sweep: Sweep, served: Served, write_request: WriteRequest
) -> None:
    assert sweep("submit", str(write_request()), "--api", served.url).returncode == 0
    changed = sweep("submit", str(write_request("changed.json", seed=12)), "--api", served.url)
    assert changed.returncode == 2
    (line,) = changed.stderr.splitlines()
    assert line.startswith(f"error: POST {served.url}/sweep-run: 409 Conflict (run_conflict): ")
    assert "seed: stored 11, this request 12" in line


def test_submit_watch_knows_the_failure_injected_shards(
    sweep: Sweep, served: Served, write_request: WriteRequest
) -> None:
    request = write_request("injected.json", run_id="injected", failure_injection_shards=[1])
    watched = sweep(
        "submit", str(request), "--api", served.url, "--watch", "--interval", "0.2", "--json"
    )
    assert watched.returncode == 0, watched.stderr
    final = json.loads(watched.stdout)
    assert (final["state"], final["failed_shards"], final["succeeded_shards"]) == (
        "failed",
        [1],
        [0],
    )
    # Without the request, status cannot tell the injected shard apart: exit 3, and says so.
    status = sweep("status", "injected", "--api", served.url)
    assert status.returncode == 3
    assert "failed shards: 1\n" in status.stdout
    assert "does not carry the request" in status.stdout


def test_unknown_run_is_refused(sweep: Sweep, served: Served) -> None:
    result = sweep("status", "nope", "--api", served.url)
    assert result.returncode == 2
    assert result.stderr.strip().endswith('run_id: "nope" — no run has this run_id')


def test_bad_request_fails_locally_with_sweep_runs_messages(
    sweep: Sweep, write_request: WriteRequest, tmp_path: Path
) -> None:
    bad = write_request("bad.json", seed=-1, colour="red")
    # A closed port: any HTTP call would end in a network error, not these lines.
    remote = sweep("submit", str(bad), "--api", f"http://127.0.0.1:{_closed_port()}")
    local = subprocess.run(
        [*SWEEP_MODULE, "run", str(bad), "--results", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert remote.returncode == local.returncode == 2
    assert remote.stderr == local.stderr
    assert remote.stderr.startswith("error: invalid request (2 problem(s)); nothing was written\n")
    # Also without credentials for a deployed URL: validation comes first.
    deployed = sweep(
        "submit", str(bad), "--api", "https://abc.execute-api.eu-west-1.amazonaws.com", env={}
    )
    assert deployed.stderr == local.stderr


def test_closed_port_is_a_one_line_network_error(sweep: Sweep, write_request: WriteRequest) -> None:
    port = _closed_port()
    for args in (["submit", str(write_request())], ["status", "remote-tiny"]):
        result = sweep(*args, "--api", f"http://127.0.0.1:{port}")
        assert result.returncode == 5
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: cannot connect to 127.0.0.1:{port}: connection refused")
        assert "; retry: " in line


def test_ctrl_c_ends_the_watch_cleanly(
    sweep: Sweep, served: Served, write_request: WriteRequest
) -> None:
    # Long enough that the run is still going when the watch is stopped.
    slow = write_request(
        "slow.json",
        run_id="slow",
        dimensions={"num_drivers": [50, 60, 70, 80, 90, 100], "num_riders": [500, 600, 700]},
        shard_count=6,
    )
    assert sweep("submit", str(slow), "--api", served.url).returncode == 0
    log = served.results.parent / "serve.log"
    polls_before = log.read_text().count("GET /sweep-run/slow")
    watcher = subprocess.Popen(
        [*WATCH, "status", "slow", "--api", served.url, "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(**FAKE_AWS),
    )
    deadline = time.monotonic() + 30
    while log.read_text().count("GET /sweep-run/slow") <= polls_before:  # it is polling
        assert watcher.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(watcher.pid, signal.SIGINT)
    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 130, err
    assert "Traceback" not in err and out == ""
    assert "slow: stopped watching (Ctrl-C); the run goes on — watch again: " in err
    # Only the watch stopped: the run goes on to its end.
    rest = sweep("status", "slow", "--api", served.url, "--watch", "--interval", "0.2", "--json")
    assert rest.returncode == 0, rest.stderr
    assert json.loads(rest.stdout)["succeeded_shards"] == [0, 1, 2, 3, 4, 5]
