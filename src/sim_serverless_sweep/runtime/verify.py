"""Verify a run's data files against what each success outcome recorded.

Cheap mode checks existence and size, full mode the SHA-256 as well. The port has no
size operation, so both read each file; cheap mode skips only the hashing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from sim_serverless_sweep.core.keys import outcome_key
from sim_serverless_sweep.core.messages import RunManifest
from sim_serverless_sweep.runtime.ports import ObjectStore
from sim_serverless_sweep.runtime.shard import (
    Clock,
    expected_keys,
    incomplete_data,
    load_run_manifest,
    planned_message,
    recorded_files,
    utc_now,
    void_success,
)
from sim_serverless_sweep.runtime.status import outcome_sets

VerifyMode = Literal["size", "full"]


@dataclass(frozen=True, slots=True)
class ShardCheck:
    """One succeeded shard's files: what is missing or differs from its success outcome.

    ``unrecorded`` lists files whose outcome predates recorded sizes and checksums (only
    their presence was checked).
    """

    shard_id: int
    files: int
    missing: tuple[str, ...] = ()
    size_mismatch: tuple[str, ...] = ()
    checksum_mismatch: tuple[str, ...] = ()
    unrecorded: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.size_mismatch or self.checksum_mismatch)

    def problems(self) -> list[str]:
        """'missing: KEY', 'size: KEY', 'checksum: KEY' lines, in that order."""
        return [
            *(f"missing: {key}" for key in self.missing),
            *(f"size: {key}" for key in self.size_mismatch),
            *(f"checksum: {key}" for key in self.checksum_mismatch),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard_id": self.shard_id,
            "ok": self.ok,
            "files": self.files,
            "missing": list(self.missing),
            "size_mismatch": list(self.size_mismatch),
            "checksum_mismatch": list(self.checksum_mismatch),
            "unrecorded": list(self.unrecorded),
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Every succeeded shard's check; shards without a success have no data to check."""

    run_id: str
    mode: VerifyMode
    shards: tuple[ShardCheck, ...]
    not_succeeded: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return all(shard.ok for shard in self.shards)

    @property
    def damaged(self) -> list[int]:
        return [shard.shard_id for shard in self.shards if not shard.ok]

    @property
    def files(self) -> int:
        return sum(shard.files for shard in self.shards)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "ok": self.ok,
            "shards_checked": len(self.shards),
            "files_checked": self.files,
            "damaged_shards": self.damaged,
            "not_succeeded_shards": list(self.not_succeeded),
            "shards": [shard.to_dict() for shard in self.shards],
        }


def check_shard(
    store: ObjectStore, prefix: str, manifest: RunManifest, shard_id: int, mode: VerifyMode
) -> ShardCheck | None:
    """Check one shard's files against its success outcome; None if it has none."""
    shard = planned_message(manifest, shard_id)
    success = store.get(outcome_key(prefix, shard.run_date, shard.run_id, "success", shard_id))
    if success is None:
        return None
    recorded = {f.key: f for f in recorded_files(success) or []}
    missing: list[str] = []
    sizes: list[str] = []
    checksums: list[str] = []
    unrecorded: list[str] = []
    wanted = expected_keys(shard, prefix)
    for key in wanted:
        data = store.get(key)
        entry = recorded.get(key)
        if data is None:
            missing.append(key)
        elif entry is None:
            unrecorded.append(key)
        elif len(data) != entry.size:
            sizes.append(key)
        elif mode == "full" and hashlib.sha256(data).hexdigest() != entry.sha256:
            checksums.append(key)
    if recorded and set(recorded) != set(wanted):
        # An outcome recording other keys than the plan's is not this shard's commit.
        missing.extend(sorted(set(wanted) - set(recorded) - set(missing)))
    return ShardCheck(
        shard_id, len(wanted), tuple(missing), tuple(sizes), tuple(checksums), tuple(unrecorded)
    )


def verify_manifest(
    store: ObjectStore, prefix: str, manifest: RunManifest, mode: VerifyMode
) -> VerifyReport:
    succeeded, _ = outcome_sets(store, prefix, manifest)
    checks = [
        check
        for shard_id in sorted(succeeded)
        if shard_id < manifest.shard_count
        and (check := check_shard(store, prefix, manifest, shard_id, mode)) is not None
    ]
    checked = {check.shard_id for check in checks}
    others = tuple(s for s in range(manifest.shard_count) if s not in checked)
    return VerifyReport(manifest.run_id, mode, tuple(checks), others)


def verify_run(
    store: ObjectStore, prefix: str, run_id: str, *, full: bool = False
) -> VerifyReport | None:
    """Check every succeeded shard's data files; None if run_id has no manifest.

    Cheap (default): each recorded file exists with its recorded size. ``full``: its
    SHA-256 matches too.
    """
    manifest = load_run_manifest(store, prefix, run_id)
    if manifest is None:
        return None
    return verify_manifest(store, prefix, manifest, "full" if full else "size")


def void_damaged(
    store: ObjectStore,
    prefix: str,
    manifest: RunManifest,
    report: VerifyReport,
    *,
    clock: Clock = utc_now,
) -> list[int]:
    """Withdraw the success of every damaged shard in ``report``; the shards voided.

    Each gets a failure outcome naming what was wrong and loses its data files, so a
    rerun of the shard writes them again (the same bytes).
    """
    for check in report.shards:
        if not check.ok:
            shard = planned_message(manifest, check.shard_id)
            why = f"success withdrawn, verification ({report.mode}) failed"
            error = incomplete_data(shard, why, check.problems())
            void_success(shard, store, prefix, error, clock=clock)
    return report.damaged
