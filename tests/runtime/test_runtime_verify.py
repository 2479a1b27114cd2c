"""Issue 12 item 9: verify a run's files against the checksums its success outcomes recorded, and
re-run on resume what fails; item 3's read side: views never show a shard twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.keys import outcome_key
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.local.memory import MemoryQueue
from sim_serverless_sweep.runtime.encode import read_parquet_bytes
from sim_serverless_sweep.runtime.shard import (
    deliver,
    load_run_manifest,
    outcome_bytes,
    planned_message,
)
from sim_serverless_sweep.runtime.status import run_status
from sim_serverless_sweep.runtime.submit import Submission, submit
from sim_serverless_sweep.runtime.verify import verify_run

PREFIX = "sweeps"
BODY = {
    "run_id": "vr",
    "seed": 11,
    "shard_count": 3,
    "replications": 2,
    "dimensions": {"horizon_min": [30], "warmup_min": [0], "num_drivers": [5, 6, 7]},
}


def _run(store: FilesystemStore, **options: object) -> Submission:
    queue = MemoryQueue()
    submission = submit(parse_request(json.dumps(BODY)), store, queue, PREFIX, **options)
    for message in queue.messages:
        assert deliver(message, store, PREFIX, 1, 3).error is None
    return submission


def _data(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("part-0.parquet")
        if "dataset=shard_outcomes" not in p.as_posix()
    }


def _shard_file(root: Path, shard_id: int, dataset: str = "trip_data") -> Path:
    (path,) = root.glob(f"{PREFIX}/dataset={dataset}/*/*/*/shard_id={shard_id}/*/part-0.parquet")
    return path


@pytest.fixture
def finished(tmp_path: Path) -> tuple[FilesystemStore, dict[str, bytes]]:
    store = FilesystemStore(tmp_path)
    _run(store)
    return store, _data(tmp_path)


def test_a_clean_run_verifies_in_both_modes(
    finished: tuple[FilesystemStore, dict[str, bytes]],
) -> None:
    store, data = finished
    for full in (False, True):
        report = verify_run(store, PREFIX, "vr", full=full)
        assert report is not None and report.ok
        assert [s.shard_id for s in report.shards] == [0, 1, 2]
        assert report.files == len(data) == 9
        assert report.to_dict()["damaged_shards"] == []
    assert verify_run(store, PREFIX, "nope") is None


def test_each_kind_of_damage_is_reported_for_its_shard(
    finished: tuple[FilesystemStore, dict[str, bytes]],
) -> None:
    store = finished[0]
    root = store.root
    flipped = _shard_file(root, 0)
    raw = bytearray(flipped.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(
        b ^ 0xFF for b in raw[len(raw) // 2 : len(raw) // 2 + 64]
    )
    flipped.write_bytes(bytes(raw))  # same size, other bytes
    truncated = _shard_file(root, 1, "shard_metrics")
    truncated.write_bytes(truncated.read_bytes()[:-10])
    deleted = _shard_file(root, 2, "snapshot_counts")
    deleted.unlink()

    cheap = verify_run(store, PREFIX, "vr")
    assert cheap is not None and cheap.damaged == [1, 2]
    by_shard = {s.shard_id: s for s in cheap.shards}
    assert by_shard[1].size_mismatch == (truncated.relative_to(root).as_posix(),)
    assert by_shard[2].missing == (deleted.relative_to(root).as_posix(),)
    full = verify_run(store, PREFIX, "vr", full=True)
    assert full is not None and full.damaged == [0, 1, 2]
    assert {s.shard_id: s for s in full.shards}[0].checksum_mismatch == (
        flipped.relative_to(root).as_posix(),
    )


@pytest.mark.parametrize("verify", ["size", "full"])
def test_resume_reruns_shards_that_fail_verification_to_the_same_bytes(
    finished: tuple[FilesystemStore, dict[str, bytes]], verify: str
) -> None:
    store, clean = finished
    root = store.root
    flipped = _shard_file(root, 0)
    raw = bytearray(flipped.read_bytes())
    raw[100] ^= 0xFF
    flipped.write_bytes(bytes(raw))
    _shard_file(root, 2, "shard_metrics").unlink()

    queue = MemoryQueue()
    submission = submit(parse_request(json.dumps(BODY)), store, queue, PREFIX, verify=verify)
    damaged = [0, 2] if verify == "full" else [2]
    assert submission.voided == damaged
    assert submission.dispatched == damaged == [m.shard_id for m in queue.messages]
    status = run_status(store, PREFIX, "vr")
    assert status is not None and status.failed == damaged  # voided: a failure outcome each
    failure = read_parquet_bytes(
        (root / outcome_key(PREFIX, status.manifest.run_date, "vr", "failure", 2)).read_bytes()
    ).to_pylist()[0]
    assert failure["error_type"] == "IncompleteShardData"
    assert f"verification ({verify}) failed: missing: " in failure["error_message"]
    assert not list(root.glob(f"{PREFIX}/dataset=*/*/*/*/shard_id=2/*/part-0.parquet"))

    for message in queue.messages:
        assert deliver(message, store, PREFIX, 1, 3).error is None
    if verify == "size":  # a same-size flip passes the cheap check
        assert _data(root) != clean
        assert submit(
            parse_request(json.dumps(BODY)), store, MemoryQueue(), PREFIX, verify="full"
        ).voided == [0]
        _run(store)
    assert _data(root) == clean
    report = verify_run(store, PREFIX, "vr", full=True)
    assert report is not None and report.ok


def test_resume_removes_the_stale_failure_beside_a_success(
    finished: tuple[FilesystemStore, dict[str, bytes]],
) -> None:
    store = finished[0]
    status = run_status(store, PREFIX, "vr")
    assert status is not None
    message = _one_message(store, 1)
    failure_key = outcome_key(PREFIX, status.manifest.run_date, "vr", "failure", 1)
    at = status.manifest.accepted_at
    store.put(failure_key, outcome_bytes(message, "failure", 3, at, at, RuntimeError("old")))
    submission = submit(parse_request(json.dumps(BODY)), store, MemoryQueue(), PREFIX)
    assert submission.dispatched == [] and submission.already_succeeded == [0, 1, 2]
    assert not store.exists(failure_key)


def _one_message(store: FilesystemStore, shard_id: int) -> ShardMessage:
    manifest = load_run_manifest(store, PREFIX, "vr")
    assert manifest is not None
    return planned_message(manifest, shard_id)


def test_views_show_one_outcome_per_shard_when_both_exist(
    finished: tuple[FilesystemStore, dict[str, bytes]],
) -> None:
    store = finished[0]
    message = _one_message(store, 1)
    status = run_status(store, PREFIX, "vr")
    assert status is not None
    when = status.manifest.accepted_at
    store.put(
        outcome_key(PREFIX, message.run_date, "vr", "failure", 1),
        outcome_bytes(message, "failure", 3, when, when, RuntimeError("old")),
    )
    con = connect(store.root, PREFIX)
    rows = con.execute("SELECT shard_id, status FROM shard_outcomes ORDER BY shard_id").fetchall()
    assert rows == [(0, "success"), (1, "success"), (2, "success")]
    files = con.execute("SELECT count(*) FROM shard_outcomes WHERE data_files IS NOT NULL")
    assert files.fetchone() == (3,)
