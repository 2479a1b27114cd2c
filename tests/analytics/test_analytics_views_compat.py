"""Results written before a column existed stay readable: the column reads as NULL."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.cli import main


def test_files_without_a_newer_column_read_as_null(tmp_path: Path) -> None:
    request = tmp_path / "r.json"
    request.write_text(
        json.dumps(
            {
                "run_id": "old",
                "dimensions": {"horizon_min": [40], "warmup_min": [5], "num_drivers": [4, 5]},
                "shard_count": 1,
                "seed": 2,
            }
        )
    )
    results = tmp_path / "results"
    assert main(["run", str(request), "--results", str(results), "--json"]) == 0
    # As an older model version wrote them: without the match_interval_s parameter column.
    for dataset in ("shard_metrics", "trip_data", "snapshot_counts"):
        for path in results.rglob(f"dataset={dataset}/**/part-0.parquet"):
            table = pq.read_table(path)
            pq.write_table(table.drop_columns(["match_interval_s"]), path)
    con = connect(results, "sweeps")
    rows = con.execute(
        "SELECT count(*), count(match_interval_s), count(platform_revenue) FROM shard_metrics"
    ).fetchall()
    assert rows == [(2, 0, 2)]
    assert con.execute("SELECT count(*) FROM point_summary").fetchall()[0][0] > 0
