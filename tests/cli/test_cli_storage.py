"""`sweep run` on a full disk and on a read-only folder: real tmpfs mounts (root only)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.chaos

RUN = [sys.executable, "-m", "sim_serverless_sweep"]


def mount(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 96 KiB tmpfs: room for a manifest and a few files, not for a whole run."""
    folder = tmp_path / "mnt"
    folder.mkdir()
    if mount(folder, "size=96k").returncode != 0:
        pytest.skip("needs root to mount a tmpfs (reproduces a full or read-only disk)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def write_request(tmp_path: Path, shards: int = 6) -> Path:
    body = {
        "run_id": "disk",
        "dimensions": {"horizon_min": [240], "num_drivers": list(range(30, 30 + 5 * shards, 5))},
        "shard_count": shards,
        "seed": 4,
    }
    path = tmp_path / "req.json"
    path.write_text(json.dumps(body))
    return path


def sweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUN, *args], capture_output=True, text=True, timeout=300)


def data_bytes(results: Path) -> dict[str, bytes]:
    return {
        p.relative_to(results).as_posix(): p.read_bytes()
        for p in results.rglob("part-0.parquet")
        if "dataset=shard_outcomes" not in p.as_posix()
    }


def test_a_full_disk_is_one_line_nothing_half_written_and_resumable(
    tmpfs: Path, tmp_path: Path
) -> None:
    req = write_request(tmp_path)
    full = sweep("run", str(req), "--results", str(tmpfs), "--workers", "2")
    assert "Traceback" not in full.stderr
    if full.returncode == 2:  # even a failure outcome did not fit: the run stops, says why
        last = full.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: --results {tmpfs}: No space left on device")
        assert "rerun" in last
    else:  # the small failure outcomes fitted: the shards are recorded as failed, with why
        assert full.returncode == 3, full.stderr
        assert "No space left on device" in full.stderr and "rerun" in full.stderr
    assert not [p for p in tmpfs.rglob("*") if p.name.startswith(".tmp-")]
    for path in tmpfs.rglob("part-0.parquet"):
        pq.read_metadata(path)  # every file that exists is whole

    assert mount(tmpfs, "remount", "size=64m").returncode == 0
    resumed = sweep("run", str(req), "--results", str(tmpfs))
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference"
    assert sweep("run", str(req), "--results", str(reference)).returncode == 0
    assert data_bytes(tmpfs) == data_bytes(reference)


def test_a_read_only_folder(tmpfs: Path, tmp_path: Path) -> None:
    assert mount(tmpfs, "remount", "size=64m").returncode == 0
    req = write_request(tmp_path, shards=2)
    assert sweep("run", str(req), "--results", str(tmpfs)).returncode == 0
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**json.loads(req.read_text()), "run_id": "other"}))
    assert mount(tmpfs, "remount", "ro").returncode == 0

    finished = sweep("run", str(req), "--results", str(tmpfs), "--json")
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["succeeded"] == 2
    assert sweep("status", "disk", "--results", str(tmpfs)).returncode == 0
    query = sweep("query", "SELECT count(*) AS n FROM shard_metrics", "--results", str(tmpfs))
    assert query.returncode == 0 and "2" in query.stdout

    new = sweep("run", str(other), "--results", str(tmpfs))
    assert new.returncode == 2
    assert new.stderr.strip() == (
        f"error: --results {tmpfs}: cannot write there (Read-only file system); nothing was run"
    )
