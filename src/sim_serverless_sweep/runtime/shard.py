"""Shard execution: the one worker code path, shared by the local pool and Lambda.

Writes are idempotent: deterministic keys and bytes, data files first and the
success outcome last, so a retry or a duplicate delivery overwrites, never adds.
The success outcome records every data file it commits (key, size, SHA-256), and
every path ends with :func:`reconcile`, which makes a shard's outcome agree with its
data under any interleaving of a success path and a failure path (see the failure
semantics in docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Callable, Iterable
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
    read_parquet_bytes,
    with_keys,
)
from sim_serverless_sweep.runtime.ports import ObjectStore
from sim_serverless_sweep.sim import resolve_params, simulate

Clock = Callable[[], dt.datetime]
MAX_ERROR_MESSAGE = 2_000
MAX_KEYS_NAMED = 5


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


class IncompleteShardData(RuntimeError):
    """A success outcome was withdrawn: data files it recorded are missing or damaged."""


class Delivery(enum.Enum):
    """What became of one delivery of a shard message."""

    SUCCEEDED = "succeeded"
    ALREADY_DONE = "already_done"
    RETRY = "retry"
    FAILED = "failed"


class Settled(enum.Enum):
    """A shard's state after :func:`reconcile`."""

    SUCCEEDED = "succeeded"  # success outcome, every recorded file present, no failure
    FAILED = "failed"  # failure outcome, no success, data removed
    PENDING = "pending"  # no outcome at all (not run yet, running, or crashed)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivery: Delivery
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class DataFile:
    """One committed data file as the success outcome records it."""

    key: str
    size: int
    sha256: str

    @classmethod
    def of(cls, key: str, data: bytes) -> DataFile:
        return cls(key, len(data), hashlib.sha256(data).hexdigest())


def files_json(files: Iterable[DataFile]) -> str:
    """The ``data_files`` column: compact JSON, sorted by key, so equal files give equal text.

    >>> files_json([DataFile("k", 3, "ab")])
    '[{"key":"k","sha256":"ab","size":3}]'
    """
    rows = [{"key": f.key, "sha256": f.sha256, "size": f.size} for f in files]
    return json.dumps(sorted(rows, key=lambda r: str(r["key"])), separators=(",", ":"))


def parse_files(text: str) -> list[DataFile]:
    """Inverse of :func:`files_json`."""
    return [DataFile(str(r["key"]), int(r["size"]), str(r["sha256"])) for r in json.loads(text)]


def recorded_files(outcome: bytes) -> list[DataFile] | None:
    """Data files a success outcome committed; None for outcomes written before they did."""
    table = read_parquet_bytes(outcome)
    if "data_files" not in table.column_names:
        return None
    text = table.column("data_files")[0].as_py()
    return parse_files(text) if text is not None else None


def expected_keys(message: ShardMessage, prefix: str) -> list[str]:
    """Every data key the shard writes: three datasets per point of its range."""
    return [
        data_key(prefix, dataset, message.run_date, message.run_id, message.shard_id, point)
        for point in message.point_range
        for dataset in DATA_DATASETS
    ]


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

    Trusts its message: queue deliveries reach it through :func:`deliver`, which checks
    the message against the run's manifest first (calibration runs one-point shards
    outside any plan). Returns ALREADY_DONE without work when the shard's success stands
    (unless force); reconciling first repairs a stale failure beside it and voids a
    success whose files are gone, which is then redone. Raises IncompleteShardData if a
    concurrent failure path removed files this run had committed.
    """
    if not force and reconcile(message, store, prefix, clock=clock) is Settled.SUCCEEDED:
        return Delivery.ALREADY_DONE
    started = clock()
    request = message.request
    if message.shard_id in request.failure_injection_shards:
        raise InjectedFailure(f"shard {message.shard_id} is listed in failure_injection_shards")
    plan = Plan.from_request(request)
    committed: list[DataFile] = []
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
            data = sink.finish()
            store.put(key, data)
            committed.append(DataFile.of(key, data))
    success_key = outcome_key(prefix, message.run_date, message.run_id, "success", message.shard_id)
    body = outcome_bytes(message, "success", attempt, started, clock(), files=committed)
    store.put(success_key, body)
    # Drops a stale failure, or withdraws this success if a failure path removed its files.
    if reconcile(message, store, prefix, clock=clock) is not Settled.SUCCEEDED:
        raise IncompleteShardData(
            f"shard {message.shard_id}: a concurrent failure record removed data files this "
            "attempt had written; its success outcome was withdrawn"
        )
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
    """Record a shard's permanent failure exactly once; True if this call recorded it.

    The failure outcome is created first (conditionally), then :func:`reconcile` settles
    the shard: a standing success wins (the failure is withdrawn, data kept); otherwise
    the shard's data files are removed. False when the failure was already recorded, a
    success stands, or the message is not one of its run's shards.
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
    shard = planned_message(manifest, message.shard_id)
    finished = clock()
    body = outcome_bytes(shard, "failure", attempts, started or finished, finished, error)
    failure_key = outcome_key(prefix, shard.run_date, shard.run_id, "failure", shard.shard_id)
    created = store.put_if_absent(failure_key, body)
    settled = reconcile(shard, store, prefix, clock=clock)  # always: it repairs, too
    return created and settled is Settled.FAILED


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


def reconcile(
    message: ShardMessage, store: ObjectStore, prefix: str, *, clock: Clock = utc_now
) -> Settled:
    """Make the shard's outcome agree with its data; safe to run anywhere, concurrently.

    - success, every recorded file present: drop any failure, then look again: if a
      concurrent reconcile voided the success meanwhile, void too (which restores the
      failure outcome the drop may have removed);
    - success with a recorded file missing: void it (delete the success, ensure the
      failure, delete the data);
    - failure only: delete the data, then look again for a success that landed meanwhile.

    Presence is all that is checked: the only concurrent change to a committed file is
    its removal (bytes are deterministic), and once the success exists nothing writes
    data again, so a missing file stays missing. ``verify`` checks sizes and checksums.
    """
    success_key = outcome_key(prefix, message.run_date, message.run_id, "success", message.shard_id)
    failure_key = outcome_key(prefix, message.run_date, message.run_id, "failure", message.shard_id)
    success = store.get(success_key)
    if success is None:
        if not store.exists(failure_key):
            return Settled.PENDING
        delete_data(message, store, prefix)
        success = store.get(success_key)
        if success is None:
            return Settled.FAILED
    missing = _missing_files(message, store, prefix, success)
    if not missing:
        store.delete(failure_key)
        # A reconcile that voided the success concurrently deletes it before it ensures
        # the failure; gone now means the failure this delete may have removed is ours
        # to restore. Still there means any void is yet to ensure it, after this delete.
        if store.exists(success_key):
            return Settled.SUCCEEDED
        missing = ["the success outcome (withdrawn by a concurrent reconcile)"]
    error = incomplete_data(message, "success withdrawn, data files missing", missing)
    void_success(message, store, prefix, error, clock=clock)
    return Settled.FAILED


def void_success(
    message: ShardMessage,
    store: ObjectStore,
    prefix: str,
    error: BaseException,
    *,
    attempts: int = 0,
    clock: Clock = utc_now,
) -> None:
    """Withdraw a shard's success: delete it, ensure the failure outcome, delete the data.

    The success goes first so readers never trust it with partial data; a crash after
    it leaves no outcome (pending), which a rerun redoes.
    """
    store.delete(outcome_key(prefix, message.run_date, message.run_id, "success", message.shard_id))
    now = clock()
    failure_key = outcome_key(prefix, message.run_date, message.run_id, "failure", message.shard_id)
    store.put_if_absent(failure_key, outcome_bytes(message, "failure", attempts, now, now, error))
    delete_data(message, store, prefix)


def delete_data(message: ShardMessage, store: ObjectStore, prefix: str) -> None:
    """Remove every data file of the shard (any dataset, any point)."""
    for dataset in DATA_DATASETS:
        folder = shard_data_prefix(
            prefix, dataset, message.run_date, message.run_id, message.shard_id
        )
        for key in list(store.list_keys(folder)):
            store.delete(key)


def _missing_files(
    message: ShardMessage, store: ObjectStore, prefix: str, success: bytes
) -> list[str]:
    recorded = recorded_files(success)
    wanted = [f.key for f in recorded] if recorded is not None else expected_keys(message, prefix)
    present: set[str] = set()
    for dataset in DATA_DATASETS:  # three listings instead of a request per file
        folder = shard_data_prefix(
            prefix, dataset, message.run_date, message.run_id, message.shard_id
        )
        present.update(store.list_keys(folder))
    return [key for key in wanted if key not in present]


def incomplete_data(message: ShardMessage, why: str, problems: list[str]) -> IncompleteShardData:
    """The error a withdrawn success is recorded with, naming the first few problems."""
    named = "; ".join(problems[:MAX_KEYS_NAMED])
    more = f"; and {len(problems) - MAX_KEYS_NAMED} more" if len(problems) > MAX_KEYS_NAMED else ""
    return IncompleteShardData(f"shard {message.shard_id}: {why}: {named}{more}")


def outcome_bytes(
    message: ShardMessage,
    status: OutcomeStatus,
    attempts: int,
    started: dt.datetime,
    finished: dt.datetime,
    error: BaseException | None = None,
    *,
    files: Iterable[DataFile] | None = None,
) -> bytes:
    """One-row shard_outcomes Parquet file; a success lists the data files it commits."""
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
        "data_files": files_json(files) if files is not None else None,
    }
    table = pa.Table.from_pylist([row], schema=STORAGE_SCHEMAS["shard_outcomes"])
    return parquet_bytes(table)
