"""Submit use case: validate -> plan -> manifest (conditional create) -> enqueue."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sim_serverless_sweep import __version__
from sim_serverless_sweep.core.contract import SweepRequest
from sim_serverless_sweep.core.keys import manifest_key
from sim_serverless_sweep.core.messages import RunManifest, ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.runtime.ports import ObjectStore, ShardQueue
from sim_serverless_sweep.runtime.shard import Clock, Settled, planned_message, reconcile, utc_now
from sim_serverless_sweep.runtime.status import recorded_outcomes
from sim_serverless_sweep.runtime.verify import VerifyMode, verify_manifest, void_damaged


class RunConflict(Exception):
    """The run_id exists with a different request; ``differences`` says where they differ."""

    def __init__(self, run_id: str, differences: list[str] | None = None) -> None:
        self.run_id = run_id
        self.differences = differences or []
        shown = "; ".join(self.differences[:MAX_DIFFERENCES_SHOWN])
        if len(self.differences) > MAX_DIFFERENCES_SHOWN:
            shown += f"; and {len(self.differences) - MAX_DIFFERENCES_SHOWN} more"
        what = f" ({shown})" if shown else ""
        self.rule = (
            f"already exists with a different request{what}; choose a new run_id "
            "or resubmit the identical request to resume"
        )
        super().__init__(f"run_id: {run_id!r} {self.rule}")


MAX_DIFFERENCES_SHOWN = 5


def request_differences(stored: SweepRequest, given: SweepRequest) -> list[str]:
    """Fields where two requests differ, as 'field: stored X, this request Y'.

    >>> a = SweepRequest(run_id="r", dimensions={"num_drivers": [1]}, shard_count=1, seed=1)
    >>> request_differences(a, a.model_copy(update={"seed": 2}))
    ['seed: stored 1, this request 2']
    """
    old, new = stored.model_dump(mode="json"), given.model_dump(mode="json")
    differences: list[str] = []
    for name in sorted(set(old) | set(new)):
        if name == "dimensions":
            dims_old, dims_new = old.get(name) or {}, new.get(name) or {}
            for dim in sorted(set(dims_old) | set(dims_new)):
                if dims_old.get(dim) != dims_new.get(dim):
                    differences.append(
                        f"dimensions.{dim}: stored {_shown(dims_old.get(dim))}, "
                        f"this request {_shown(dims_new.get(dim))}"
                    )
        elif old.get(name) != new.get(name):
            differences.append(
                f"{name}: stored {_shown(old.get(name))}, this request {_shown(new.get(name))}"
            )
    return differences


def _shown(value: Any) -> str:
    return "absent" if value is None else json.dumps(value)


@dataclass(frozen=True, slots=True)
class Submission:
    """What submit did: the run's manifest and which shards it enqueued."""

    manifest: RunManifest
    created: bool
    dispatched: list[int] = field(default_factory=list)
    already_succeeded: list[int] = field(default_factory=list)
    voided: list[int] = field(default_factory=list)  # failed verification; dispatched again


def load_manifest(store: ObjectStore, prefix: str, run_id: str) -> RunManifest | None:
    data = store.get(manifest_key(prefix, run_id))
    return RunManifest.from_bytes(data) if data is not None else None


def accept(
    request: SweepRequest, store: ObjectStore, prefix: str, clock: Clock = utc_now
) -> tuple[RunManifest, bool]:
    """Record the run (first time) or load it (resubmit); RunConflict if it differs."""
    manifest = RunManifest.create(request, clock(), __version__)
    if store.put_if_absent(manifest_key(prefix, request.run_id), manifest.to_bytes()):
        return manifest, True
    existing = load_manifest(store, prefix, request.run_id)
    if existing is None:  # deleted between the two calls; treat as a conflict to be safe
        raise RunConflict(request.run_id)
    if existing.request_sha256 != manifest.request_sha256:
        raise RunConflict(request.run_id, request_differences(existing.request, request))
    return existing, False


def pending_messages(
    manifest: RunManifest,
    store: ObjectStore,
    prefix: str,
    *,
    created: bool,
    force: bool,
    verify: VerifyMode | None = "size",
) -> tuple[list[ShardMessage], list[int], list[int]]:
    """Messages for shards without a standing success (all shards if force).

    On a resume the succeeded shards' data files are verified first (``verify``: "size"
    checks existence and size, "full" the SHA-256 too, None skips it): a damaged shard's
    success is voided (a failure outcome, data removed) and the shard is dispatched again,
    to write the same bytes. A shard with both outcomes is reconciled (its stale failure
    goes, or its success if files are missing). Returns (messages, shards already
    succeeded, shards whose success was voided).
    """
    plan = Plan.from_request(manifest.request)
    succeeded: set[int] = set()
    voided: list[int] = []
    if not created and not force:
        succeeded, failed = recorded_outcomes(store, prefix, manifest)
        if verify is not None:
            report = verify_manifest(store, prefix, manifest, verify)
            voided = void_damaged(store, prefix, manifest, report)
            succeeded -= set(voided)
        for shard_id in sorted(succeeded & failed):
            shard = planned_message(manifest, shard_id)
            if reconcile(shard, store, prefix) is not Settled.SUCCEEDED:
                succeeded.discard(shard_id)
    messages = [
        ShardMessage.for_shard(manifest.request, manifest.run_date, plan, shard_id)
        for shard_id in range(plan.shard_count)
        if shard_id not in succeeded
    ]
    return messages, sorted(succeeded), voided


def submit(
    request: SweepRequest,
    store: ObjectStore,
    queue: ShardQueue,
    prefix: str,
    *,
    clock: Clock = utc_now,
    force: bool = False,
    verify: VerifyMode | None = "size",
) -> Submission:
    """Accept a validated request and enqueue every shard not yet succeeded.

    Idempotent: the same request again re-dispatches only unfinished shards, and those
    whose data fails ``verify`` (see :func:`pending_messages`).
    """
    manifest, created = accept(request, store, prefix, clock)
    messages, done, voided = pending_messages(
        manifest, store, prefix, created=created, force=force, verify=verify
    )
    queue.send(messages)
    return Submission(manifest, created, [m.shard_id for m in messages], done, voided)
