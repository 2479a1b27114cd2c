"""Runs as a whole: list every run under a prefix, and delete one run's objects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sim_serverless_sweep.core.keys import (
    ALL_DATASETS,
    manifest_key,
    manifests_prefix,
    run_id_of_manifest,
    run_prefix,
    runner_key,
)
from sim_serverless_sweep.core.messages import RunManifest
from sim_serverless_sweep.runtime.ports import ObjectStore
from sim_serverless_sweep.runtime.status import RunStatus, run_status


def run_ids(store: ObjectStore, prefix: str) -> list[str]:
    """Every run_id with a manifest under ``prefix``, sorted."""
    found = (run_id_of_manifest(key) for key in store.list_keys(manifests_prefix(prefix)))
    return sorted(run_id for run_id in found if run_id is not None)


def list_runs(store: ObjectStore, prefix: str) -> list[RunStatus]:
    """Status of every run, newest accepted first."""
    statuses = [s for s in (run_status(store, prefix, r) for r in run_ids(store, prefix)) if s]
    return sorted(statuses, key=lambda s: (s.manifest.accepted_at, s.manifest.run_id), reverse=True)


def run_object_keys(store: ObjectStore, prefix: str, manifest: RunManifest) -> Iterator[str]:
    """Every object of a run: each dataset's files, the runner lease, the manifest last."""
    for dataset in ALL_DATASETS:
        yield from store.list_keys(run_prefix(prefix, dataset, manifest.run_date, manifest.run_id))
    if store.exists(runner_key(prefix, manifest.run_id)):
        yield runner_key(prefix, manifest.run_id)
    yield manifest_key(prefix, manifest.run_id)


@dataclass(frozen=True, slots=True)
class DeletedRun:
    """What delete_run removed."""

    manifest: RunManifest
    objects: int


def delete_run(store: ObjectStore, prefix: str, manifest: RunManifest) -> DeletedRun:
    """Remove every object of a run, the manifest last.

    The manifest goes last, so an interrupted delete still finds the run and can finish.
    Another run's objects are never touched: every key listed is under this run's folders.
    """
    keys = list(run_object_keys(store, prefix, manifest))
    for key in keys:
        store.delete(key)
    return DeletedRun(manifest, len(keys))
