"""The outcome queries ignore a failure that sits beside a success, as Athena reads them.

Athena's shard_outcomes table is the raw files; a crash between a shard's success write
and its stale-failure delete leaves both until the next touch repairs it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.cli import main
from sim_serverless_sweep.core.keys import outcome_key
from sim_serverless_sweep.core.messages import RunManifest, ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.runtime.shard import outcome_bytes

QUERIES = Path(__file__).resolve().parents[2] / "queries"


def test_a_stale_failure_is_not_counted_on_the_raw_outcomes(tmp_path: Path) -> None:
    request = tmp_path / "r.json"
    request.write_text(
        json.dumps(
            {
                "run_id": "stale",
                "dimensions": {"horizon_min": [40], "warmup_min": [5], "num_drivers": [4, 5]},
                "shard_count": 2,
                "seed": 2,
                "failure_injection_shards": [1],
            }
        )
    )
    results = tmp_path / "results"
    assert main(["run", str(request), "--results", str(results), "--json"]) == 0
    manifest = RunManifest.from_bytes(
        (results / "sweeps/manifests/run_id=stale/manifest.json").read_bytes()
    )
    message = ShardMessage.for_shard(
        manifest.request, manifest.run_date, Plan.from_request(manifest.request), 0
    )
    stale = results / outcome_key("sweeps", manifest.run_date, "stale", "failure", 0)
    stale.parent.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    stale.write_bytes(outcome_bytes(message, "failure", 3, now, now, RuntimeError("old")))

    con = connect(results, "sweeps")
    con.execute("CREATE OR REPLACE VIEW shard_outcomes AS SELECT * FROM _shard_outcomes_files")
    assert con.execute("SELECT count(*) FROM shard_outcomes").fetchall() == [(3,)]
    failed = con.sql((QUERIES / "failed_shards.sql").read_text()).fetchall()
    assert [(row[0], row[1]) for row in failed] == [("stale", 1)]
    by_run = con.sql((QUERIES / "shard_outcomes_by_run.sql").read_text())
    row = dict(zip(by_run.columns, by_run.fetchall()[0], strict=True))
    assert (row["shards"], row["succeeded_shards"], row["failed_shards"]) == (2, 1, 1)
