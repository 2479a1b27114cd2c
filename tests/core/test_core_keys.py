"""Key layout: exactly the spec's keys, and parse is the inverse of build."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim_serverless_sweep.core.keys import (
    KeyLayoutError,
    check_prefix,
    data_key,
    manifest_key,
    outcome_key,
    parse_key,
)

DAY = dt.date(2026, 11, 26)

KEY_CASES = [
    (
        data_key("sweeps", "shard_metrics", DAY, "demo-run-001", 0, 1),
        "sweeps/dataset=shard_metrics/run_date=2026-11-26/run_id=demo-run-001/status=success/"
        "shard_id=0/point_index=1/part-0.parquet",
    ),
    (
        data_key("a/b", "trip_data", DAY, "r", 12, 345),
        "a/b/dataset=trip_data/run_date=2026-11-26/run_id=r/status=success/shard_id=12/"
        "point_index=345/part-0.parquet",
    ),
    (
        data_key("", "snapshot_counts", DAY, "r", 0, 0),
        "dataset=snapshot_counts/run_date=2026-11-26/run_id=r/status=success/shard_id=0/"
        "point_index=0/part-0.parquet",
    ),
    (
        outcome_key("sweeps", DAY, "demo-run-001", "failure", 1),
        "sweeps/dataset=shard_outcomes/run_date=2026-11-26/run_id=demo-run-001/status=failure/"
        "shard_id=1/part-0.parquet",
    ),
    (
        outcome_key("sweeps", DAY, "demo-run-001", "success", 3),
        "sweeps/dataset=shard_outcomes/run_date=2026-11-26/run_id=demo-run-001/status=success/"
        "shard_id=3/part-0.parquet",
    ),
    (manifest_key("sweeps", "demo-run-001"), "sweeps/manifests/run_id=demo-run-001/manifest.json"),
]


@pytest.mark.parametrize(("built", "expected"), KEY_CASES)
def test_keys_match_the_spec_layout(built: str, expected: str) -> None:
    assert built == expected


run_ids = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)
prefixes = st.sampled_from(["", "sweeps", "a/b", "x.y/z_1"])


@given(
    prefixes,
    st.sampled_from(["shard_metrics", "trip_data", "snapshot_counts"]),
    st.dates(),
    run_ids,
    st.integers(0, 10**6),
    st.integers(0, 10**9),
)
def test_data_key_round_trip(
    prefix: str, dataset: str, day: dt.date, run_id: str, shard_id: int, point_index: int
) -> None:
    parsed = parse_key(data_key(prefix, dataset, day, run_id, shard_id, point_index))  # type: ignore[arg-type]
    assert (
        parsed.prefix,
        parsed.dataset,
        parsed.run_date,
        parsed.run_id,
        parsed.status,
        parsed.shard_id,
        parsed.point_index,
    ) == (prefix, dataset, day, run_id, "success", shard_id, point_index)


@given(
    prefixes, st.dates(), run_ids, st.sampled_from(["success", "failure"]), st.integers(0, 10**6)
)
def test_outcome_key_round_trip(
    prefix: str, day: dt.date, run_id: str, status: str, shard_id: int
) -> None:
    parsed = parse_key(outcome_key(prefix, day, run_id, status, shard_id))  # type: ignore[arg-type]
    assert (parsed.dataset, parsed.status, parsed.shard_id, parsed.point_index) == (
        "shard_outcomes",
        status,
        shard_id,
        None,
    )


@pytest.mark.parametrize(
    "key",
    [
        "sweeps/dataset=trip_data/run_date=2026-11-26/run_id=r/status=failure/shard_id=0/"
        "point_index=0/part-0.parquet",
        "sweeps/dataset=shard_outcomes/run_date=2026-11-26/run_id=r/status=success/shard_id=0/"
        "point_index=0/part-0.parquet",
        "sweeps/dataset=trip_data/run_date=2026-11-26/run_id=r/status=success/shard_id=0/"
        "part-0.parquet",
        "sweeps/dataset=other/run_date=2026-11-26/run_id=r/status=success/shard_id=0/part-0.parquet",
        "sweeps/manifests/run_id=r/manifest.json",
        "sweeps/dataset=shard_outcomes/run_date=2026-11-26/run_id=r/status=success/shard_id=0/"
        ".tmp-part-0.parquet.1.ab",
    ],
)
def test_foreign_keys_are_rejected(key: str) -> None:
    with pytest.raises(KeyLayoutError):
        parse_key(key)


@pytest.mark.parametrize("bad", ["a=b", "../x", "a//b", "a b", "x/./y"])
def test_bad_prefixes_rejected(bad: str) -> None:
    with pytest.raises(KeyLayoutError):
        check_prefix(bad)


def test_bad_run_id_never_becomes_a_key() -> None:
    with pytest.raises(KeyLayoutError):
        data_key("p", "trip_data", DAY, "../etc", 0, 0)
