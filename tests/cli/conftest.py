"""CLI fixtures: a tiny request (milliseconds per point) and a results folder holding it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim_serverless_sweep.cli import main

TINY: dict[str, Any] = {
    "run_id": "tiny",
    "dimensions": {
        "horizon_min": [60],
        "warmup_min": [10],
        "num_drivers": [5, 6],
        "num_riders": [20],
    },
    "shard_count": 2,
    "seed": 11,
}


def _write_request(folder: Path, name: str = "tiny.json", **fields: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps({**TINY, **fields}))
    return path


def _run_cli(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m sim_serverless_sweep ARGS` in a real process (real stdio, real exit code)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sim_serverless_sweep", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


WriteRequest = Callable[..., Path]
RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def write_request() -> WriteRequest:
    """write_request(folder, name="tiny.json", **fields): TINY with fields replaced."""
    return _write_request


@pytest.fixture
def run_cli() -> RunCli:
    """run_cli(*args, stdin=None, cwd=None, timeout=120): the CLI in a real process."""
    return _run_cli


@pytest.fixture
def tiny_results(tmp_path: Path) -> Path:
    """A results folder with run 'tiny' done (2 shards)."""
    results = tmp_path / "results"
    assert main(["run", str(_write_request(tmp_path)), "--results", str(results), "--json"]) == 0
    return results
