"""Storage keys: the only module that builds or parses an object key.

Layout (the spec's, exactly)::

    <prefix>/dataset=<shard_metrics|trip_data|snapshot_counts>/run_date=<yyyy-mm-dd>/
        run_id=<id>/status=success/shard_id=<id>/point_index=<p>/part-0.parquet
    <prefix>/dataset=shard_outcomes/run_date=<yyyy-mm-dd>/run_id=<id>/
        status=<success|failure>/shard_id=<id>/part-0.parquet

Run manifests live outside the dataset folders so Athena never reads them:
``<prefix>/manifests/run_id=<id>/manifest.json``, with the lease of a local runner
working on the run beside it (``runner.json``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

DataDataset = Literal["shard_metrics", "trip_data", "snapshot_counts"]
Dataset = Literal["shard_metrics", "trip_data", "snapshot_counts", "shard_outcomes"]
OutcomeStatus = Literal["success", "failure"]

DATA_DATASETS: tuple[DataDataset, ...] = ("shard_metrics", "trip_data", "snapshot_counts")
ALL_DATASETS: tuple[Dataset, ...] = (*DATA_DATASETS, "shard_outcomes")
PART_FILE = "part-0.parquet"
MANIFEST_FILE = "manifest.json"
RUNNER_FILE = "runner.json"

_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class KeyLayoutError(ValueError):
    """A key, prefix or key part that does not fit the layout."""


def check_prefix(prefix: str) -> str:
    """Normalise a results prefix ('' allowed; no leading/trailing slash kept).

    >>> check_prefix("/sweeps/")
    'sweeps'
    """
    stripped = prefix.strip("/")
    if stripped and (
        not _PREFIX_PATTERN.fullmatch(stripped)
        or "=" in stripped
        or any(part in (".", "..") for part in stripped.split("/"))
    ):
        raise KeyLayoutError(
            f"results prefix {prefix!r}: use path segments of A-Z a-z 0-9 . _ - "
            "separated by '/', without '=' or '..'"
        )
    return stripped


def _join(prefix: str, *parts: str) -> str:
    return "/".join(p for p in (prefix, *parts) if p)


def check_run_id(run_id: str) -> None:
    """Raise KeyLayoutError unless run_id can be part of a key."""
    if not _RUN_ID_PATTERN.fullmatch(run_id):
        raise KeyLayoutError(
            f"run_id {run_id!r}: must be 1-128 characters of A-Z a-z 0-9 . _ - "
            "not starting with '.' or '-'"
        )


def data_key(
    prefix: str,
    dataset: DataDataset,
    run_date: dt.date,
    run_id: str,
    shard_id: int,
    point_index: int,
) -> str:
    """Key of one point's file in a data dataset.

    >>> data_key("sweeps", "trip_data", dt.date(2026, 1, 2), "r1", 3, 17)
    'sweeps/dataset=trip_data/run_date=2026-01-02/run_id=r1/status=success/shard_id=3/point_index=17/part-0.parquet'
    """
    if dataset not in DATA_DATASETS:
        raise KeyLayoutError(f"dataset {dataset!r} is not a data dataset")
    check_run_id(run_id)
    return _join(
        prefix,
        f"dataset={dataset}",
        f"run_date={run_date.isoformat()}",
        f"run_id={run_id}",
        "status=success",
        f"shard_id={int(shard_id)}",
        f"point_index={int(point_index)}",
        PART_FILE,
    )


def outcome_key(
    prefix: str, run_date: dt.date, run_id: str, status: OutcomeStatus, shard_id: int
) -> str:
    """Key of a shard's outcome record.

    >>> outcome_key("", dt.date(2026, 1, 2), "r1", "failure", 1)
    'dataset=shard_outcomes/run_date=2026-01-02/run_id=r1/status=failure/shard_id=1/part-0.parquet'
    """
    if status not in ("success", "failure"):
        raise KeyLayoutError(f"outcome status {status!r} is not success|failure")
    check_run_id(run_id)
    return _join(
        prefix,
        "dataset=shard_outcomes",
        f"run_date={run_date.isoformat()}",
        f"run_id={run_id}",
        f"status={status}",
        f"shard_id={int(shard_id)}",
        PART_FILE,
    )


def outcomes_prefix(prefix: str, run_date: dt.date, run_id: str) -> str:
    """Folder holding every outcome of one run (for listing)."""
    return run_prefix(prefix, "shard_outcomes", run_date, run_id)


def shard_data_prefix(
    prefix: str, dataset: DataDataset, run_date: dt.date, run_id: str, shard_id: int
) -> str:
    """Folder holding one shard's files of a data dataset (for clean-up)."""
    check_run_id(run_id)
    return (
        _join(
            prefix,
            f"dataset={dataset}",
            f"run_date={run_date.isoformat()}",
            f"run_id={run_id}",
            "status=success",
            f"shard_id={int(shard_id)}",
        )
        + "/"
    )


def manifest_key(prefix: str, run_id: str) -> str:
    """Key of a run's manifest (found by run_id alone, for status and resume)."""
    check_run_id(run_id)
    return _join(prefix, "manifests", f"run_id={run_id}", MANIFEST_FILE)


def runner_key(prefix: str, run_id: str) -> str:
    """Key of the lease a local runner holds on a run (live vs abandoned, one at a time)."""
    check_run_id(run_id)
    return _join(prefix, "manifests", f"run_id={run_id}", RUNNER_FILE)


def manifests_prefix(prefix: str) -> str:
    """Folder holding every run's manifest (for listing runs)."""
    return _join(prefix, "manifests") + "/"


_MANIFEST_PATTERN = re.compile(r"(?:^|/)manifests/run_id=(?P<run_id>[^/]+)/manifest\.json$")


def run_id_of_manifest(key: str) -> str | None:
    """The run_id a manifest key belongs to; None for any other key.

    >>> run_id_of_manifest(manifest_key("sweeps", "r1"))
    'r1'
    """
    match = _MANIFEST_PATTERN.search(key)
    if match is None or not _RUN_ID_PATTERN.fullmatch(match["run_id"]):
        return None
    return match["run_id"]


def run_prefix(prefix: str, dataset: Dataset, run_date: dt.date, run_id: str) -> str:
    """Folder holding every file of one run in one dataset (all statuses and shards)."""
    check_run_id(run_id)
    return (
        _join(prefix, f"dataset={dataset}", f"run_date={run_date.isoformat()}", f"run_id={run_id}")
        + "/"
    )


def dataset_root(prefix: str, dataset: Dataset) -> str:
    """Folder of one dataset; an Athena table's LOCATION."""
    return _join(prefix, f"dataset={dataset}") + "/"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """The parts of a dataset key."""

    prefix: str
    dataset: Dataset
    run_date: dt.date
    run_id: str
    status: OutcomeStatus
    shard_id: int
    point_index: int | None


_KEY_PATTERN = re.compile(
    r"^(?:(?P<prefix>.+)/)?dataset=(?P<dataset>shard_metrics|trip_data|snapshot_counts|"
    r"shard_outcomes)/run_date=(?P<run_date>\d{4}-\d{2}-\d{2})/run_id=(?P<run_id>[^/]+)/"
    r"status=(?P<status>success|failure)/shard_id=(?P<shard_id>\d+)/"
    r"(?:point_index=(?P<point_index>\d+)/)?part-0\.parquet$"
)


def parse_key(key: str) -> ParsedKey:
    """Inverse of data_key / outcome_key; raises KeyLayoutError for anything else.

    >>> parse_key(outcome_key("p", dt.date(2026, 1, 2), "r1", "success", 0)).shard_id
    0
    """
    match = _KEY_PATTERN.fullmatch(key)
    if match is None:
        raise KeyLayoutError(f"{key!r} is not a dataset key of this layout")
    dataset = match["dataset"]
    has_point = match["point_index"] is not None
    if has_point == (dataset == "shard_outcomes") or (
        dataset != "shard_outcomes" and match["status"] != "success"
    ):
        raise KeyLayoutError(f"{key!r} mixes the data and outcome layouts")
    parsed = ParsedKey(
        prefix=match["prefix"] or "",
        dataset=dataset,  # type: ignore[arg-type]
        run_date=dt.date.fromisoformat(match["run_date"]),
        run_id=match["run_id"],
        status=match["status"],  # type: ignore[arg-type]
        shard_id=int(match["shard_id"]),
        point_index=int(match["point_index"]) if has_point else None,
    )
    check_run_id(parsed.run_id)
    return parsed
