"""Read side: a run's progress from its manifest and outcome objects."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim_serverless_sweep.core.keys import KeyLayoutError, manifest_key, outcomes_prefix, parse_key
from sim_serverless_sweep.core.messages import RunManifest
from sim_serverless_sweep.runtime.ports import ObjectStore

if TYPE_CHECKING:
    from sim_serverless_sweep.runtime.lease import Lease


@dataclass(frozen=True, slots=True)
class RunStatus:
    """Where a run stands; ``runner`` is the local runner's lease, if one ever ran it."""

    manifest: RunManifest
    succeeded: list[int]
    failed: list[int]
    pending: list[int]
    runner: Lease | None = None
    read_at: dt.datetime | None = None

    @property
    def state(self) -> str:
        """running, interrupted (pending shards, runner gone), failed or succeeded."""
        if self.pending:
            now = self.read_at or dt.datetime.now(dt.UTC)
            if self.runner is not None and not self.runner.is_live(now):
                return "interrupted"
            return "running"
        return "failed" if self.failed else "succeeded"

    def to_dict(self) -> dict[str, Any]:
        now = self.read_at or dt.datetime.now(dt.UTC)
        return {
            **self.manifest.summary(),
            "state": self.state,
            "runner": self.runner.to_dict(now) if self.runner is not None else None,
            "succeeded": len(self.succeeded),
            "failed": len(self.failed),
            "pending": len(self.pending),
            "succeeded_shards": self.succeeded,
            "failed_shards": self.failed,
            "pending_shards": self.pending,
        }


def outcome_sets(
    store: ObjectStore, prefix: str, manifest: RunManifest
) -> tuple[set[int], set[int]]:
    """Shard ids with a success outcome and with a failure outcome (and no success).

    A shard with both (a crash between a success and its stale failure's removal, or a
    reconcile in progress) counts as succeeded; the next touch of the shard removes the
    failure (``runtime.shard.reconcile``).
    """
    succeeded, failed = recorded_outcomes(store, prefix, manifest)
    return succeeded, failed - succeeded


def recorded_outcomes(
    store: ObjectStore, prefix: str, manifest: RunManifest
) -> tuple[set[int], set[int]]:
    """Shard ids with a success outcome object and with a failure outcome object."""
    succeeded: set[int] = set()
    failed: set[int] = set()
    for key in store.list_keys(outcomes_prefix(prefix, manifest.run_date, manifest.run_id)):
        try:
            parsed = parse_key(key)
        except KeyLayoutError:
            continue  # not ours (e.g. a temp file); never counted
        (succeeded if parsed.status == "success" else failed).add(parsed.shard_id)
    return succeeded, failed


def run_status(store: ObjectStore, prefix: str, run_id: str) -> RunStatus | None:
    """Status of a run, or None if no manifest exists for run_id."""
    data = store.get(manifest_key(prefix, run_id))
    if data is None:
        return None
    from sim_serverless_sweep.runtime.lease import read_lease

    manifest = RunManifest.from_bytes(data)
    succeeded, failed = outcome_sets(store, prefix, manifest)
    pending = [s for s in range(manifest.shard_count) if s not in succeeded and s not in failed]
    runner = read_lease(store, prefix, run_id)
    now = dt.datetime.now(dt.UTC)
    return RunStatus(manifest, sorted(succeeded), sorted(failed), pending, runner, now)
