"""Shard use case over the in-memory store: idempotence and failure recording."""

from __future__ import annotations

import datetime as dt
import io
import json

import pyarrow.parquet as pq
import pytest

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.keys import outcome_key, parse_key
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.local.memory import MemoryStore
from sim_serverless_sweep.runtime.encode import read_parquet_bytes
from sim_serverless_sweep.runtime.shard import Delivery, deliver, record_failure, run_shard

DAY = dt.date(2026, 11, 26)


def message(shard_id: int = 0, **fields: object) -> ShardMessage:
    body = {
        "run_id": "rt",
        "seed": 3,
        "shard_count": 2,
        "dimensions": {"horizon_min": [90], "warmup_min": [30], "num_drivers": [20, 30]},
        **fields,
    }
    request = parse_request(json.dumps(body))
    return ShardMessage.for_shard(request, DAY, Plan.from_request(request), shard_id)


def datasets_of(store: MemoryStore) -> list[str]:
    return sorted(parse_key(k).dataset for k in store.objects if "/dataset=" in f"/{k}")


def test_success_then_duplicate_is_skipped() -> None:
    store = MemoryStore()
    assert run_shard(message(), store, "p", attempt=1) is Delivery.SUCCEEDED
    snapshot = dict(store.objects)
    assert run_shard(message(), store, "p", attempt=1) is Delivery.ALREADY_DONE
    assert store.objects == snapshot
    assert datasets_of(store) == ["shard_metrics", "shard_outcomes", "snapshot_counts", "trip_data"]


def test_forced_rerun_rewrites_identical_data() -> None:
    store = MemoryStore()
    run_shard(message(), store, "p", attempt=1)
    data = {k: v for k, v in store.objects.items() if "shard_outcomes" not in k}
    run_shard(message(), store, "p", attempt=1, force=True)
    assert {k: v for k, v in store.objects.items() if "shard_outcomes" not in k} == data


def test_replicates_are_row_groups_of_one_file() -> None:
    store = MemoryStore()
    run_shard(message(replications=3), store, "p", attempt=1)
    metrics = [v for k, v in store.objects.items() if "dataset=shard_metrics" in k]
    table = read_parquet_bytes(metrics[0])
    assert table.column("replicate").to_pylist() == [0, 1, 2]
    assert len({row["requests"] for row in table.to_pylist()}) > 1  # independent seeds
    assert pq.ParquetFile(io.BytesIO(metrics[0])).num_row_groups == 3


def test_failure_after_a_crash_removes_partial_data_and_records_once() -> None:
    store = MemoryStore()
    run_shard(message(), store, "p", attempt=1)
    success = outcome_key("p", DAY, "rt", "success", 0)
    store.delete(success)  # as if the attempt crashed before its success outcome
    error = RuntimeError("boom")
    assert record_failure(message(), store, "p", 3, error) is True
    assert record_failure(message(), store, "p", 3, error) is False  # exactly once
    assert datasets_of(store) == ["shard_outcomes"]
    failure = read_parquet_bytes(store.objects[outcome_key("p", DAY, "rt", "failure", 0)])
    assert failure.column("error_message").to_pylist() == ["boom"]


def test_success_wins_over_a_late_failure_record() -> None:
    store = MemoryStore()
    run_shard(message(), store, "p", attempt=1)
    before = dict(store.objects)
    assert record_failure(message(), store, "p", 3, RuntimeError("late")) is False
    assert store.objects == before  # no failure outcome, data kept


@pytest.mark.parametrize(("attempt", "expected"), [(1, Delivery.RETRY), (3, Delivery.FAILED)])
def test_injected_shard_retries_then_fails_without_data(attempt: int, expected: Delivery) -> None:
    store = MemoryStore()
    result = deliver(message(failure_injection_shards=[0]), store, "p", attempt, 3)
    assert result.delivery is expected
    assert type(result.error).__name__ == "InjectedFailure"
    assert datasets_of(store) == (["shard_outcomes"] if attempt == 3 else [])


def test_later_success_removes_stale_failure() -> None:
    store = MemoryStore()
    record_failure(message(), store, "p", 3, RuntimeError("transient"))
    assert run_shard(message(), store, "p", attempt=1) is Delivery.SUCCEEDED
    assert outcome_key("p", DAY, "rt", "failure", 0) not in store.objects
