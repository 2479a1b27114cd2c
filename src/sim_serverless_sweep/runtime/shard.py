"""Shard execution: the one worker code path, shared by the local pool and Lambda.

Writes are idempotent: deterministic keys and bytes, data files first and the
success outcome last, so a retry or a duplicate delivery overwrites, never adds.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from sim_serverless_sweep import __version__
from sim_serverless_sweep.core.keys import (
    DATA_DATASETS,
    DataDataset,
    OutcomeStatus,
    data_key,
    manifest_key,
    outcome_key,
    shard_data_prefix,
)
from sim_serverless_sweep.core.messages import RunManifest, ShardMessage, request_digest
from sim_serverless_sweep.core.schemas import STORAGE_SCHEMAS
from sim_serverless_sweep.core.sharding import Plan, point_seed
from sim_serverless_sweep.runtime.encode import (
    ParquetSink,
    PointKeys,
    key_columns,
    parquet_bytes,
    with_keys,
)
from sim_serverless_sweep.runtime.ports import ObjectStore
from sim_serverless_sweep.sim import resolve_params, simulate

Clock = Callable[[], dt.datetime]
MAX_ERROR_MESSAGE = 2_000


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class InjectedFailure(RuntimeError):
    """Raised for shards listed in failure_injection_shards, on every attempt."""


class ShardMessageError(ValueError):
    """A shard message that its run's manifest does not vouch for; nothing was written."""


class UnknownRun(ShardMessageError):
    """The message's run_id has no manifest under the results prefix."""


class PlanMismatch(ShardMessageError):
    """The message differs from its run's plan (request, run_date, shard_id or range)."""


class Delivery(enum.Enum):
    """What became of one delivery of a shard message."""

    SUCCEEDED = "succeeded"
    ALREADY_DONE = "already_done"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivery: Delivery
    error: BaseException | None = None


def load_run_manifest(store: ObjectStore, prefix: str, run_id: str) -> RunManifest | None:
    data = store.get(manifest_key(prefix, run_id))
    return RunManifest.from_bytes(data) if data is not None else None


def check_message(message: ShardMessage, store: ObjectStore, prefix: str) -> RunManifest:
    """The run's manifest, if the message is one of its plan's shards; raise otherwise.

    UnknownRun without a manifest; PlanMismatch when the request, run_date, shard_id or
    point range differs from what the manifest's plan gives that shard.
    """
    manifest = load_run_manifest(store, prefix, message.run_id)
    if manifest is None:
        raise UnknownRun(
            f"run_id {message.run_id!r}: no run manifest at "
            f"{manifest_key(prefix, message.run_id)}; the message belongs to no submitted "
            "run, so nothing is written for it"
        )
    problems: list[str] = []
    if request_digest(message.request) != manifest.request_sha256:
        problems.append("its request differs from the run's (request_sha256)")
    if message.run_date != manifest.run_date:
        problems.append(f"run_date {message.run_date} is not the run's {manifest.run_date}")
    if not 0 <= message.shard_id < manifest.shard_count:
        problems.append(f"shard_id is outside [0, {manifest.shard_count})")
    else:
        span = Plan.from_request(manifest.request).shard_range(message.shard_id)
        if message.point_range != span:
            problems.append(
                f"point range [{message.first_point_index}, {message.stop_point_index}) is not "
                f"the plan's [{span.start}, {span.stop})"
            )
    if problems:
        raise PlanMismatch(
            f"shard {message.shard_id} of run {message.run_id!r} does not match the run's "
            f"plan: {'; '.join(problems)}"
        )
    return manifest


def planned_message(manifest: RunManifest, shard_id: int) -> ShardMessage:
    """The message the run's plan gives a shard (what submit enqueues)."""
    plan = Plan.from_request(manifest.request)
    return ShardMessage.for_shard(manifest.request, manifest.run_date, plan, shard_id)


def run_shard(
    message: ShardMessage,
    store: ObjectStore,
    prefix: str,
    attempt: int,
    *,
    clock: Clock = utc_now,
    force: bool = False,
) -> Delivery:
    """Simulate every point of a shard and store its four datasets.

    Returns ALREADY_DONE without work when the success outcome exists (unless force).
    Trusts its message: queue deliveries reach it through :func:`deliver`, which checks
    the message against the run's manifest first (calibration runs one-point shards
    outside any plan).
    """
    success_key = outcome_key(prefix, message.run_date, message.run_id, "success", message.shard_id)
    if not force and store.exists(success_key):
        return Delivery.ALREADY_DONE
    started = clock()
    request = message.request
    if message.shard_id in request.failure_injection_shards:
        raise InjectedFailure(f"shard {message.shard_id} is listed in failure_injection_shards")
    plan = Plan.from_request(request)
    for point_index in message.point_range:
        point = plan.point(point_index)
        params = resolve_params(point)
        # One row group per replicate, so memory holds one simulation at a time.
        sinks = {dataset: ParquetSink() for dataset in DATA_DATASETS}
        for replicate in range(request.replications):
            result = simulate(point, point_seed(request.seed, point_index, replicate))
            keys = PointKeys(message.run_id, message.shard_id, point_index, replicate, params)
            tables: dict[DataDataset, pa.Table] = {
                "shard_metrics": result.metrics,
                "trip_data": result.trips,
                "snapshot_counts": result.snapshots,
            }
            constants = key_columns(keys, max(table.num_rows for table in tables.values()))
            for dataset, table in tables.items():
                sinks[dataset].write(with_keys(dataset, table, keys, constants))
        for dataset, sink in sinks.items():
            key = data_key(
                prefix, dataset, message.run_date, message.run_id, message.shard_id, point_index
            )
            store.put(key, sink.finish())
    store.put(success_key, outcome_bytes(message, "success", attempt, started, clock()))
    # A failure recorded by an earlier run of this shard is stale now.
    store.delete(outcome_key(prefix, message.run_date, message.run_id, "failure", message.shard_id))
    return Delivery.SUCCEEDED


def record_failure(
    message: ShardMessage,
    store: ObjectStore,
    prefix: str,
    attempts: int,
    error: BaseException,
    *,
    started: dt.datetime | None = None,
    clock: Clock = utc_now,
) -> bool:
    """Record a shard's permanent failure exactly once; False if it was already recorded.

    The failure outcome is created first (conditionally), then any data files a crashed
    attempt left behind are removed, so a failed shard ends with no data files. If a
    duplicate delivery has succeeded meanwhile, success wins: the failure is withdrawn
    and its data kept. (A success that lands while the files are being removed can still
    lose files; queries read data only of shards with a success outcome.) Nothing is
    recorded for a message of an unknown run or with a shard_id outside the plan.
    """
    manifest = load_run_manifest(store, prefix, message.run_id)
    if manifest is None:
        # Nothing at all: an outcome would create result folders for a run that has no
        # manifest (status cannot see it, `sweep runs` cannot list or delete it).
        return False
    if not 0 <= message.shard_id < manifest.shard_count:
        return False  # an outcome would count a failed shard the run does not have
    # The plan's own shard, whatever the message claimed: the record lands under the
    # run's run_date with the shard's real range, and the error says what was wrong.
    message = planned_message(manifest, message.shard_id)
    finished = clock()
    body = outcome_bytes(message, "failure", attempts, started or finished, finished, error)
    failure_key = outcome_key(prefix, message.run_date, message.run_id, "failure", message.shard_id)
    created = store.put_if_absent(failure_key, body)
    success_key = outcome_key(prefix, message.run_date, message.run_id, "success", message.shard_id)
    if store.exists(success_key):
        if created:
            store.delete(failure_key)
        return False
    for dataset in DATA_DATASETS:
        folder = shard_data_prefix(
            prefix, dataset, message.run_date, message.run_id, message.shard_id
        )
        for key in list(store.list_keys(folder)):
            store.delete(key)
    return created


def deliver(
    message: ShardMessage,
    store: ObjectStore,
    prefix: str,
    attempt: int,
    max_attempts: int,
    *,
    clock: Clock = utc_now,
    force: bool = False,
) -> DeliveryResult:
    """Handle one delivery: check the message, run the shard; on the last attempt record
    the failure.

    A message its run's manifest does not vouch for (ShardMessageError) fails like any
    other error, before anything is written. The caller maps RETRY/FAILED to its
    transport (re-queue, batch item failure).
    """
    started = clock()
    try:
        check_message(message, store, prefix)
        return DeliveryResult(run_shard(message, store, prefix, attempt, clock=clock, force=force))
    except Exception as exc:  # any shard error is data: retried, then recorded
        if attempt >= max_attempts:
            record_failure(message, store, prefix, attempt, exc, started=started, clock=clock)
            return DeliveryResult(Delivery.FAILED, exc)
        return DeliveryResult(Delivery.RETRY, exc)


def outcome_bytes(
    message: ShardMessage,
    status: OutcomeStatus,
    attempts: int,
    started: dt.datetime,
    finished: dt.datetime,
    error: BaseException | None = None,
) -> bytes:
    """One-row shard_outcomes Parquet file."""
    span = message.point_range
    row = {
        "run_id": message.run_id,
        "shard_id": message.shard_id,
        "status": status,
        "attempts": attempts,
        "points": len(span),
        "first_point_index": span.start,
        "last_point_index": span.stop - 1,
        "replications": message.request.replications,
        "started_at": started,
        "finished_at": finished,
        "duration_s": (finished - started).total_seconds(),
        "error_type": type(error).__name__ if error is not None else None,
        "error_message": str(error)[:MAX_ERROR_MESSAGE] if error is not None else None,
        "code_version": __version__,
    }
    table = pa.Table.from_pylist([row], schema=STORAGE_SCHEMAS["shard_outcomes"])
    return parquet_bytes(table)
