"""Read side: a run's progress from its manifest and outcome objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim_serverless_sweep.core.keys import KeyLayoutError, manifest_key, outcomes_prefix, parse_key
from sim_serverless_sweep.core.messages import RunManifest
from sim_serverless_sweep.runtime.ports import ObjectStore


@dataclass(frozen=True, slots=True)
class RunStatus:
    manifest: RunManifest
    succeeded: list[int]
    failed: list[int]
    pending: list[int]

    @property
    def state(self) -> str:
        if self.pending:
            return "running"
        return "failed" if self.failed else "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.manifest.summary(),
            "state": self.state,
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
    """Shard ids with a success outcome and with a failure outcome."""
    succeeded: set[int] = set()
    failed: set[int] = set()
    for key in store.list_keys(outcomes_prefix(prefix, manifest.run_date, manifest.run_id)):
        try:
            parsed = parse_key(key)
        except KeyLayoutError:
            continue  # not ours (e.g. a temp file); never counted
        (succeeded if parsed.status == "success" else failed).add(parsed.shard_id)
    return succeeded, failed - succeeded


def run_status(store: ObjectStore, prefix: str, run_id: str) -> RunStatus | None:
    """Status of a run, or None if no manifest exists for run_id."""
    data = store.get(manifest_key(prefix, run_id))
    if data is None:
        return None
    manifest = RunManifest.from_bytes(data)
    succeeded, failed = outcome_sets(store, prefix, manifest)
    pending = [s for s in range(manifest.shard_count) if s not in succeeded and s not in failed]
    return RunStatus(manifest, sorted(succeeded), sorted(failed), pending)
