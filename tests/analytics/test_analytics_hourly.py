"""The hourly_metrics view: per-hour figures that time-of-day demand makes differ."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim_serverless_sweep.analytics.views import HOURLY_METRICS_SQL, connect
from sim_serverless_sweep.cli import main as sweep_main

ROOT = Path(__file__).resolve().parents[2]

PEAK_REQUEST = {
    "run_id": "hourly",
    "dimensions": {
        "morning_peak_amplitude": [0.0, 1.5],
        "start_hour": [6.5],
        "morning_peak_hour": [8.5],
        "peak_width_hours": [0.75],
        "horizon_min": [300],
        "warmup_min": [60],
        "num_drivers": [60],
    },
    "shard_count": 2,
    "seed": 3,
    "replications": 2,
}


@pytest.fixture(scope="module")
def peak_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hourly")
    request = folder / "request.json"
    request.write_text(json.dumps(PEAK_REQUEST))
    code = sweep_main(["run", str(request), "--results", str(folder / "r"), "--workers", "2"])
    assert code == 0
    return folder / "r"


def read(results: Path, dataset: str) -> list[dict[str, Any]]:
    files = sorted((results / "sweeps" / f"dataset={dataset}").glob("**/part-0.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()  # type: ignore[no-any-return]


def expected_rows(results: Path) -> dict[tuple[int, int, int], dict[str, float]]:
    """The view's figures recomputed from the Parquet rows in plain Python."""
    snaps: dict[tuple[int, int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in read(results, "snapshot_counts"):
        snaps[(r["point_index"], r["replicate"], r["minute"] // 60)].append(r)
    trips: dict[tuple[int, int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in read(results, "trip_data"):
        trips[(r["point_index"], r["replicate"], r["request_minute"] // 60)].append(r)
    out = {}
    for key, rows in snaps.items():
        online = [r["drivers_idle"] + r["drivers_en_route"] + r["drivers_on_trip"] for r in rows]
        hour_trips = trips.get(key, [])
        waits = [t["wait_min"] for t in hour_trips if t["pickup_time_min"] is not None]
        served = sum(t["pickup_time_min"] is not None for t in hour_trips)
        cancelled = sum(t["trip_status"] == "cancelled" for t in hour_trips)
        out[key] = {
            "clock_hour": (rows[0]["start_hour"] + key[2]) % 24.0,
            "minutes": len(rows),
            "mean_online_drivers": sum(online) / len(rows),
            "utilisation": sum(r["drivers_on_trip"] for r in rows) / sum(online),
            "requests": len(hour_trips),
            "served": served,
            "cancelled": cancelled,
            "completion_rate": served / (served + cancelled) if served + cancelled else None,
            "wait_mean_min": sum(waits) / len(waits) if waits else None,
        }
    return out


def test_view_matches_the_parquet_rows(peak_results: Path) -> None:
    con = connect(peak_results, "sweeps")
    relation = con.sql("SELECT * FROM hourly_metrics WHERE run_id = 'hourly'")
    got = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
    expected = expected_rows(peak_results)
    assert len(got) == len(expected) == 2 * 2 * 5  # points x replicates x hours
    for row in got:
        want = expected[(row["point_index"], row["replicate"], row["hour"])]
        for name, value in want.items():
            if value is None:
                assert row[name] is None, name
            else:
                assert math.isclose(float(row[name]), float(value), rel_tol=1e-9), name


def test_the_peak_hour_is_busier_and_waits_longer(peak_results: Path) -> None:
    con = connect(peak_results, "sweeps")
    rows = con.execute(
        "SELECT morning_peak_amplitude, clock_hour, avg(requests), avg(wait_mean_min) "
        "FROM hourly_metrics AS h JOIN (SELECT DISTINCT run_id, point_index, "
        "morning_peak_amplitude FROM shard_metrics) AS m USING (run_id, point_index) "
        "GROUP BY 1, 2"
    ).fetchall()
    by = {(a, c): (req, wait) for a, c, req, wait in rows}
    # The peak (08:00-09:00 clock, around its 08:30 centre) against the same hour without.
    assert by[(1.5, 8.5)][0] > 1.8 * by[(0.0, 8.5)][0]
    assert by[(1.5, 8.5)][1] > by[(0.0, 8.5)][1]
    # Away from the peak (06:30-07:30) demand is close to the flat one.
    assert by[(1.5, 6.5)][0] < 1.5 * by[(0.0, 6.5)][0]


def test_query_file_is_the_view() -> None:
    assert (ROOT / "queries" / "hourly_metrics.sql").read_text() == HOURLY_METRICS_SQL
