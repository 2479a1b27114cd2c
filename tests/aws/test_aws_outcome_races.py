"""Issue 12 item 1 on S3 (moto server mode): a shard's outcome agrees with its data under every
interleaving of one success path and one failure path, paused at each store operation."""

from __future__ import annotations

import runpy
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sim_serverless_sweep.aws.s3_store import S3Store

# Shared with the other store's test; run_path since tests are not importable modules.
il = SimpleNamespace(
    **runpy.run_path(
        str(Path(__file__).resolve().parent.parent / "runtime" / "interleave.py"),
        run_name="_interleave",
    )
)
LONGEST = 14  # deliver's success path on the one-point shard: 13 store operations


@pytest.fixture(scope="module")
def reference() -> dict[str, bytes]:
    data: dict[str, bytes] = il.clean_data()
    return data


def _run(s3: Any, reference: dict[str, bytes], first: str, runs: tuple[int, ...]) -> str:
    bucket = f"races-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    store = S3Store(s3, bucket)
    il.submit_manifest(store)
    turns = il.interleave(store, first, runs)
    state: str = il.settled_state(store, reference, f"{first} first, runs {runs}: {turns.trace}")
    return state


def test_pausing_one_path_at_every_step_on_s3(s3: Any, reference: dict[str, bytes]) -> None:
    states = [_run(s3, reference, first, runs) for first, runs in il.schedules(1, LONGEST)]
    assert set(states) == {"success", "failure"}


@pytest.mark.parametrize(
    ("first", "runs"),
    [("success", (6, 4, 5)), ("success", (6, 4, 6)), ("success", (4, 9)), ("failure", (5, 13))],
)
def test_schedules_with_more_switches_on_s3(
    s3: Any, reference: dict[str, bytes], first: str, runs: tuple[int, ...]
) -> None:
    assert _run(s3, reference, first, runs) in ("success", "failure")
