"""Shard use case over the in-memory store: idempotence, failure recording, message checks,
recorded checksums and the repair of a shard left with both outcomes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import pyarrow.parquet as pq
import pytest

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.keys import manifest_key, outcome_key, parse_key
from sim_serverless_sweep.core.messages import RunManifest, ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.local.memory import MemoryStore
from sim_serverless_sweep.runtime.encode import parquet_bytes, read_parquet_bytes
from sim_serverless_sweep.runtime.shard import (
    DataFile,
    Delivery,
    PlanMismatch,
    UnknownRun,
    deliver,
    expected_keys,
    outcome_bytes,
    record_failure,
    recorded_files,
    run_shard,
)
from sim_serverless_sweep.runtime.status import run_status

DAY = dt.date(2026, 11, 26)
NOON = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)


def body(**fields: object) -> dict[str, object]:
    return {
        "run_id": "rt",
        "seed": 3,
        "shard_count": 2,
        "dimensions": {"horizon_min": [90], "warmup_min": [30], "num_drivers": [20, 30]},
        **fields,
    }


def message(shard_id: int = 0, **fields: object) -> ShardMessage:
    request = parse_request(json.dumps(body(**fields)))
    return ShardMessage.for_shard(request, DAY, Plan.from_request(request), shard_id)


def submitted(**fields: object) -> MemoryStore:
    """A store holding the run's manifest, as submit leaves it (accepted on DAY)."""
    store = MemoryStore()
    request = parse_request(json.dumps(body(**fields)))
    manifest = RunManifest.create(request, dt.datetime(2026, 11, 26, 8, tzinfo=dt.UTC), "t")
    store.put(manifest_key("p", "rt"), manifest.to_bytes())
    return store


def datasets_of(store: MemoryStore) -> list[str]:
    return sorted(parse_key(k).dataset for k in store.objects if "/dataset=" in f"/{k}")


def data_of(store: MemoryStore) -> dict[str, bytes]:
    return {
        k: v
        for k, v in store.objects.items()
        if "/status=success/shard_id=" in k and "point_index=" in k
    }


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
    store = submitted()
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
    store = submitted()
    run_shard(message(), store, "p", attempt=1)
    before = dict(store.objects)
    assert record_failure(message(), store, "p", 3, RuntimeError("late")) is False
    assert store.objects == before  # no failure outcome, data kept


@pytest.mark.parametrize(("attempt", "expected"), [(1, Delivery.RETRY), (3, Delivery.FAILED)])
def test_injected_shard_retries_then_fails_without_data(attempt: int, expected: Delivery) -> None:
    store = submitted(failure_injection_shards=[0])
    result = deliver(message(failure_injection_shards=[0]), store, "p", attempt, 3)
    assert result.delivery is expected
    assert type(result.error).__name__ == "InjectedFailure"
    assert datasets_of(store) == (["shard_outcomes"] if attempt == 3 else [])


def test_later_success_removes_stale_failure() -> None:
    store = submitted()
    record_failure(message(), store, "p", 3, RuntimeError("transient"))
    assert run_shard(message(), store, "p", attempt=1) is Delivery.SUCCEEDED
    assert outcome_key("p", DAY, "rt", "failure", 0) not in store.objects


# --- the success outcome records its files (item 9) ---------------------------------


def test_success_outcome_records_every_data_file_with_size_and_sha256() -> None:
    store = submitted()
    run_shard(message(), store, "p", attempt=1)
    outcome = store.objects[outcome_key("p", DAY, "rt", "success", 0)]
    files = recorded_files(outcome)
    assert files is not None
    assert files == sorted(
        (DataFile.of(k, v) for k, v in data_of(store).items()), key=lambda f: f.key
    )
    assert [f.key for f in files] == sorted(expected_keys(message(), "p"))
    assert all(f.sha256 == hashlib.sha256(store.objects[f.key]).hexdigest() for f in files)
    record_failure(message(1), store, "p", 3, RuntimeError("x"))
    failure = read_parquet_bytes(store.objects[outcome_key("p", DAY, "rt", "failure", 1)])
    assert failure.column("data_files").to_pylist() == [None]


def test_outcomes_written_before_the_column_still_read() -> None:
    old = read_parquet_bytes(outcome_bytes(message(), "success", 1, NOON, NOON)).drop(
        ["data_files"]
    )
    assert recorded_files(parquet_bytes(old)) is None


# --- both outcomes: readers prefer success, the next touch repairs (item 3) ----------


def _crash_before_the_stale_failure_delete(store: MemoryStore) -> None:
    # A failure from an earlier delivery, then a success that died before removing it.
    record_failure(message(), store, "p", 3, RuntimeError("earlier"))
    run_shard(message(), store, "p", attempt=1)
    store.put(
        outcome_key("p", DAY, "rt", "failure", 0),
        outcome_bytes(message(), "failure", 3, NOON, NOON, RuntimeError("earlier")),
    )


def test_redelivery_of_a_shard_with_both_outcomes_removes_the_failure() -> None:
    store = submitted()
    _crash_before_the_stale_failure_delete(store)
    data = data_of(store)
    assert run_shard(message(), store, "p", attempt=2) is Delivery.ALREADY_DONE
    assert outcome_key("p", DAY, "rt", "failure", 0) not in store.objects
    assert data_of(store) == data


def test_a_late_failure_record_of_a_shard_with_both_outcomes_removes_the_failure() -> None:
    store = submitted()
    _crash_before_the_stale_failure_delete(store)
    data = data_of(store)
    assert record_failure(message(), store, "p", 3, RuntimeError("dlq")) is False
    assert outcome_key("p", DAY, "rt", "failure", 0) not in store.objects
    assert data_of(store) == data


def test_redelivery_of_a_success_with_a_missing_file_redoes_the_shard() -> None:
    store = submitted()
    run_shard(message(), store, "p", attempt=1)
    data = data_of(store)
    del store.objects[sorted(data)[0]]
    assert run_shard(message(), store, "p", attempt=2) is Delivery.SUCCEEDED
    assert data_of(store) == data
    assert outcome_key("p", DAY, "rt", "failure", 0) not in store.objects


def test_status_counts_a_shard_with_both_outcomes_once_as_succeeded() -> None:
    store = submitted()
    _crash_before_the_stale_failure_delete(store)
    status = run_status(store, "p", "rt")
    assert status is not None
    assert (status.succeeded, status.failed, status.pending) == ([0], [], [1])


# --- messages are checked against the run's plan (item 15) --------------------------


@pytest.mark.parametrize("attempt", [1, 3])
def test_a_message_of_an_unknown_run_writes_nothing_at_all(attempt: int) -> None:
    store = MemoryStore()
    result = deliver(message(), store, "p", attempt, 3)
    assert result.delivery is (Delivery.RETRY if attempt == 1 else Delivery.FAILED)
    assert isinstance(result.error, UnknownRun)
    assert "no run manifest" in str(result.error)
    assert record_failure(message(), store, "p", 3, RuntimeError("dlq")) is False
    assert store.objects == {}


def _bad(kind: str) -> ShardMessage:
    good = message(0)  # the plan gives shard 0 the range [0, 1)
    changes: dict[str, object] = {
        "empty range": {"stop_point_index": 0},
        "overlapping range": {"stop_point_index": 2},
        "another shard's range": {"first_point_index": 1, "stop_point_index": 2},
        "other request": {"request": message(0, seed=4).request},
        "other run_date": {"run_date": DAY + dt.timedelta(days=1)},
    }[kind]
    return good.model_copy(update=changes)


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("empty range", "point range [0, 0) is not the plan's [0, 1)"),
        ("overlapping range", "point range [0, 2) is not the plan's [0, 1)"),
        ("another shard's range", "point range [1, 2) is not the plan's [0, 1)"),
        ("other request", "its request differs"),
        ("other run_date", "run_date 2026-11-27 is not the run's 2026-11-26"),
    ],
)
def test_a_message_off_its_plan_fails_before_any_write(kind: str, says: str) -> None:
    store = submitted()
    before = dict(store.objects)
    retry = deliver(_bad(kind), store, "p", 1, 3)
    assert retry.delivery is Delivery.RETRY and isinstance(retry.error, PlanMismatch)
    assert says in str(retry.error)
    assert store.objects == before
    result = deliver(_bad(kind), store, "p", 3, 3)
    assert result.delivery is Delivery.FAILED
    # The failure is the plan's shard 0, under the run's date, naming the mismatch.
    assert data_of(store) == {}
    row = read_parquet_bytes(store.objects[outcome_key("p", DAY, "rt", "failure", 0)]).to_pylist()
    assert (row[0]["error_type"], row[0]["first_point_index"], row[0]["points"]) == (
        "PlanMismatch",
        0,
        1,
    )
    assert says in row[0]["error_message"]
    # The shard itself still runs when its real message arrives.
    assert run_shard(message(0), store, "p", attempt=1) is Delivery.SUCCEEDED
    assert outcome_key("p", DAY, "rt", "failure", 0) not in store.objects


def test_a_shard_id_outside_the_plan_fails_and_records_nothing() -> None:
    store = submitted()
    before = dict(store.objects)
    stray = message(0).model_copy(update={"shard_id": 7})
    result = deliver(stray, store, "p", 3, 3)
    assert result.delivery is Delivery.FAILED and isinstance(result.error, PlanMismatch)
    assert "shard_id is outside [0, 2)" in str(result.error)
    assert store.objects == before
