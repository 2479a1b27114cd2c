"""The query pack: every file is portable Trino, runs on DuckDB, and answers correctly.

Expected answers are computed here from the Parquet files with pyarrow + plain Python
(no DuckDB), on two real sweeps: the spec's demo (one failed shard) and a replicated one.
"""

from __future__ import annotations

import json
import math
import runpy
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim_serverless_sweep.analytics.summary import SUMMARY_METRICS, point_summary_sql, t975
from sim_serverless_sweep.analytics.views import connect
from sim_serverless_sweep.cli import main as sweep_main
from sim_serverless_sweep.sim import METRICS_SCHEMA, PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
QUERIES = sorted((ROOT / "queries").glob("*.sql"))
Rows = list[dict[str, Any]]


# importlib mode cannot import a sibling module by name
_trino = runpy.run_path(str(Path(__file__).with_name("trino_check.py")))
table_schemas = _trino["table_schemas"]
trino_problems = _trino["trino_problems"]


def run_query(results: Path, name: str) -> Rows:
    con = connect(results, "sweeps")
    relation = con.sql((ROOT / "queries" / name).read_text())
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def num(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def mean(values: Iterable[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def assert_rows(actual: Rows, expected: Rows) -> None:
    assert len(actual) == len(expected), (actual, expected)
    for got, want in zip(actual, expected, strict=True):
        for key, value in want.items():
            have = num(got[key])
            if isinstance(value, float) and have is not None:
                assert have == pytest.approx(value, rel=1e-9, abs=1e-9), (key, got, want)
            else:
                assert have == value, (key, got, want)


def group(rows: Rows, *keys: str) -> dict[tuple[Any, ...], Rows]:
    out: dict[tuple[Any, ...], Rows] = defaultdict(list)
    for row in rows:
        out[tuple(row[k] for k in keys)].append(row)
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ portability


def test_the_pack_has_the_questions_of_the_issue() -> None:
    names = {q.name for q in QUERIES}
    assert {
        "revenue_wait_by_commission.sql",
        "best_commission_per_fleet.sql",
        "driver_earnings_vs_wage.sql",
        "failed_shards.sql",
        "snapshot_timeseries.sql",
        "point_summary.sql",
    } <= names
    for query in QUERIES:
        assert query.read_text().startswith("--"), f"{query.name} must say what it answers"


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.name)
def test_query_is_portable_trino(query: Path) -> None:
    assert trino_problems(query.read_text(), table_schemas()) == []


@pytest.mark.parametrize(
    "sql, problem",
    [
        ("SELECT a::int FROM shard_metrics", "'::'"),
        ("SELECT run_id, count(*) FROM shard_metrics GROUP BY ALL", "GROUP BY ALL"),
        ("SELECT * EXCLUDE (run_id) FROM shard_metrics", "EXCLUDE"),
        ("SELECT run_id FROM shard_outcomes WHERE error_message ILIKE '%x%'", "ILIKE"),
        ("SELECT run_id FROM shard_metrics LIMIT 3 OFFSET 2", "Trino would write 'OFFSET'"),
        ("SELECT INTERVAL '3 days'", "non-Trino spelling"),
        ("SELECT list_sum(x) FROM t", "list_sum"),
        ("SELECT run_id FROM shard_metrics QUALIFY row_number() OVER () = 1", "not valid Trino"),
        ("SELECT `run_id` FROM shard_metrics", "not valid Trino"),
        ("SELECT wait_p95_min AS w FROM shard_metrics WHERE w > 1", "does not resolve"),
        ("SELECT wait_p59_min FROM shard_metrics", "does not resolve"),
        ("SELECT * FROM shard_metrics m ASOF JOIN trip_data t ON m.run_id = t.run_id", "ASOF"),
        ("SELECT run_id FROM trip_data WHERE run_id GLOB 'a*'", "GLOB"),
        ("SELECT run_id FROM trip_data UNION BY NAME SELECT run_id FROM trip_data", "UNION BY"),
        ("SELECT run_id FROM trip_data WHERE run_id LIKE ANY ('a%', 'b%')", "LIKE ANY"),
        ("SELECT * FROM range(10)", "table function"),
        ("SELECT * FROM read_parquet('x.parquet')", "table function"),
        ("SELECT greatest(wait_p50_min, wait_p95_min) FROM shard_metrics", "greatest"),
        ("SELECT concat(run_id, 'x') FROM shard_metrics", "concat"),
        ("SELECT run_id FROM shard_metrics WHERE status = 'success'", "does not resolve"),
    ],
)
def test_checker_rejects_duckdb_only_sql(sql: str, problem: str) -> None:
    problems = trino_problems(sql, table_schemas())
    assert problems and any(problem in p for p in problems), problems


def test_point_summary_file_is_the_generated_view() -> None:
    assert (ROOT / "queries" / "point_summary.sql").read_text() == point_summary_sql()
    metric_columns = {f.name for f in METRICS_SCHEMA} - {"window_start_minute", "window_end_minute"}
    assert set(SUMMARY_METRICS) == metric_columns


def test_sweep_query_runs_a_pack_file(
    demo_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = sweep_main(
        [
            "query",
            "--file",
            str(ROOT / "queries" / "failed_shards.sql"),
            "--results",
            str(demo_results),
            "--format",
            "json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["shard_id"], r["error_type"]) for r in rows] == [
        ("demo-run-001", 1, "InjectedFailure")
    ]


# ------------------------------------------------------------------ answers

RESULTS = ["demo_results", "reps_results"]


@pytest.fixture(params=RESULTS)
def results(request: pytest.FixtureRequest) -> Path:
    folder: Path = request.getfixturevalue(request.param)
    return folder


def test_revenue_wait_by_commission(results: Path, read_rows: Callable[..., Rows]) -> None:
    metrics = read_rows(results, "shard_metrics")
    expected = [
        {
            "run_id": run_id,
            "commission_rate": rate,
            "simulations": len(rows),
            "platform_revenue_mean": mean(r["platform_revenue"] for r in rows),
            "platform_revenue_per_hour": mean(
                float(r["platform_revenue"])
                * 60
                / (r["window_end_minute"] - r["window_start_minute"])
                for r in rows
            ),
            "gross_bookings_mean": mean(r["gross_bookings"] for r in rows),
            "wait_p95_min_mean": mean(r["wait_p95_min"] for r in rows),
            "wait_p95_min_max": max(r["wait_p95_min"] for r in rows),
            "completion_rate": sum(r["served"] for r in rows)
            / sum(r["served"] + r["cancelled"] for r in rows),
        }
        for (run_id, rate), rows in group(metrics, "run_id", "commission_rate").items()
    ]
    assert expected
    assert_rows(run_query(results, "revenue_wait_by_commission.sql"), expected)


def test_best_commission_per_fleet(results: Path, read_rows: Callable[..., Rows]) -> None:
    metrics = read_rows(results, "shard_metrics")
    expected = []
    cells = group(metrics, "run_id", "num_drivers", "num_riders", "commission_rate")
    fleets = sorted({key[:3] for key in cells})
    for fleet in fleets:
        ok = []
        for key, rows in cells.items():
            wait = mean(r["wait_p95_min"] for r in rows)
            if key[:3] == fleet and wait is not None and wait <= 10.0:
                ok.append(
                    (-(mean(r["platform_revenue"] for r in rows) or 0.0), key[3], wait, len(rows))
                )
        best = min(ok, default=None)
        expected.append(
            {
                "run_id": fleet[0],
                "num_drivers": fleet[1],
                "num_riders": fleet[2],
                "max_wait_p95_min": 10.0,
                "commission_rate": best[1] if best else None,
                "platform_revenue_mean": -best[0] if best else None,
                "wait_p95_min_mean": best[2] if best else None,
                "simulations": best[3] if best else None,
            }
        )
    assert_rows(run_query(results, "best_commission_per_fleet.sql"), expected)


def test_driver_earnings_vs_wage(results: Path, read_rows: Callable[..., Rows]) -> None:
    metrics = read_rows(results, "shard_metrics")

    def hours(r: dict[str, Any]) -> float:
        return float(r["mean_online_drivers"]) * (r["window_end_minute"] - r["window_start_minute"])

    def weighted(rows: Rows, column: str) -> float:
        known = [r for r in rows if r[column] is not None]
        return sum(r[column] * hours(r) for r in known) / sum(hours(r) for r in known)

    expected = [
        {
            "run_id": run_id,
            "commission_rate": rate,
            "simulations": len(rows),
            "net_hourly_earnings": weighted(rows, "driver_net_hourly_earnings"),
            "pool_reservation_wage_mean": mean(r["reservation_wage_mean"] for r in rows),
            "online_share_mean": mean(r["mean_online_drivers"] / r["num_drivers"] for r in rows),
            "utilisation": weighted(rows, "utilisation"),
        }
        for (run_id, rate), rows in group(metrics, "run_id", "commission_rate").items()
    ]
    assert_rows(run_query(results, "driver_earnings_vs_wage.sql"), expected)


def test_shard_outcomes_by_run(results: Path, read_rows: Callable[..., Rows]) -> None:
    outcomes = read_rows(results, "shard_outcomes")
    expected = []
    for (run_id,), rows in group(outcomes, "run_id").items():
        ok = [r for r in rows if r["status"] == "success"]
        bad = [r for r in rows if r["status"] == "failure"]
        expected.append(
            {
                "run_id": run_id,
                "shards": len(rows),
                "succeeded_shards": len(ok),
                "failed_shards": len(bad),
                "succeeded_points": sum(r["points"] for r in ok),
                "failed_points": sum(r["points"] for r in bad),
                "max_attempts": max(r["attempts"] for r in rows),
                "success_duration_mean_s": mean(r["duration_s"] for r in ok),
                "success_duration_max_s": max(r["duration_s"] for r in ok),
            }
        )
    assert_rows(run_query(results, "shard_outcomes_by_run.sql"), expected)
    assert expected[0]["failed_shards"] == 1  # both sweeps inject one failure


def test_failed_shards(results: Path, read_rows: Callable[..., Rows]) -> None:
    failed = sorted(
        (r for r in read_rows(results, "shard_outcomes") if r["status"] == "failure"),
        key=lambda r: (r["run_id"], r["shard_id"]),
    )
    expected = [
        {
            k: r[k]
            for k in (
                "run_id",
                "shard_id",
                "attempts",
                "points",
                "first_point_index",
                "last_point_index",
                "error_type",
                "error_message",
            )
        }
        | {"failed_shards_in_run": sum(1 for f in failed if f["run_id"] == r["run_id"])}
        for r in failed
    ]
    assert expected and expected[0]["error_type"] == "InjectedFailure"
    assert_rows(run_query(results, "failed_shards.sql"), expected)


def test_trip_wait_percentiles(results: Path, read_rows: Callable[..., Rows]) -> None:
    trips = [t for t in read_rows(results, "trip_data") if t["in_window"]]
    actual = run_query(results, "trip_wait_percentiles.sql")
    cells = group(trips, "run_id", "commission_rate", "num_drivers")
    assert [(r["run_id"], r["commission_rate"], r["num_drivers"]) for r in actual] == list(cells)
    for got, rows in zip(actual, cells.values(), strict=True):
        done = [t for t in rows if t["trip_status"] == "completed"]
        assert got["completed_trips"] == len(done)
        assert got["cancelled_trips"] == sum(t["trip_status"] == "cancelled" for t in rows)
        assert got["pickup_km_mean"] == pytest.approx(mean(t["pickup_km"] for t in done))
        waits = np.array([t["wait_min"] for t in done], dtype=float)
        for q, column in ((0.5, "wait_p50_min"), (0.95, "wait_p95_min")):
            # approx_percentile is approximate: it must fall between nearby exact quantiles
            low, high = np.quantile(waits, [max(q - 0.03, 0), min(q + 0.03, 1)])
            assert low - 1e-9 <= float(got[column]) <= high + 1e-9, (column, got[column])


def test_snapshot_timeseries(results: Path, read_rows: Callable[..., Rows]) -> None:
    metrics = read_rows(results, "shard_metrics")
    snaps = read_rows(results, "snapshot_counts")
    chosen: dict[str, tuple[tuple[float | None, int], int]] = {}
    for (run_id, point), rows in group(metrics, "run_id", "point_index").items():
        revenue = mean(r["platform_revenue"] for r in rows)
        if run_id not in chosen or (revenue, -point) > chosen[run_id][0]:
            chosen[run_id] = ((revenue, -point), point)
    expected = []
    for (run_id, point, minute), rows in group(snaps, "run_id", "point_index", "minute").items():
        if chosen[run_id][1] != point:
            continue
        expected.append(
            {
                "run_id": run_id,
                "point_index": point,
                "minute": minute,
                "replicates": len(rows),
                "drivers_online": mean(
                    r["drivers_idle"] + r["drivers_en_route"] + r["drivers_on_trip"] for r in rows
                ),
                "drivers_on_trip": mean(r["drivers_on_trip"] for r in rows),
                "riders_waiting": mean(r["riders_waiting"] for r in rows),
            }
        )
    assert expected
    assert_rows(run_query(results, "snapshot_timeseries.sql"), expected)


def test_point_summary_mean_and_ci(reps_results: Path, read_rows: Callable[..., Rows]) -> None:
    metrics = read_rows(reps_results, "shard_metrics")
    con = connect(reps_results, "sweeps")
    rel = con.sql("SELECT * FROM point_summary ORDER BY run_id, point_index, metric")
    got = {
        (r[0], r[1], r[rel.columns.index("metric")]): dict(zip(rel.columns, r, strict=True))
        for r in rel.fetchall()
    }
    points = group(metrics, "run_id", "point_index")
    assert len(got) == len(points) * len(SUMMARY_METRICS)
    assert t975(2) == 4.303  # textbook t(0.975, 2)
    for (run_id, point), rows in points.items():
        assert len(rows) == 3
        for metric in SUMMARY_METRICS:
            row = got[(run_id, point, metric)]
            values = [float(r[metric]) for r in rows if r[metric] is not None]
            assert row["replicates"] == 3 and row["n"] == len(values)
            for param in PARAMETERS:
                assert row[param] == rows[0][param]
            if len(values) < 2:
                assert row["ci95_low"] is None
                continue
            m, sd = statistics.fmean(values), statistics.stdev(values)
            half = (
                4.303 * sd / math.sqrt(3)
                if len(values) == 3
                else t975(len(values) - 1) * sd / math.sqrt(len(values))
            )
            assert row["mean"] == pytest.approx(m, rel=1e-9)
            assert row["ci95_low"] == pytest.approx(m - half, rel=1e-9, abs=1e-9)
            assert row["ci95_high"] == pytest.approx(m + half, rel=1e-9, abs=1e-9)


def test_point_summary_single_replication_has_no_interval(demo_results: Path) -> None:
    con = connect(demo_results, "sweeps")
    rows = con.execute(
        "SELECT count(*), count(ci95_low), min(n), max(n) FROM point_summary "
        "WHERE metric = 'platform_revenue'"
    ).fetchall()
    assert rows == [(6, 0, 1, 1)]


def test_t_quantiles_beyond_the_table() -> None:
    # Cornish-Fisher values against published t(0.975, df): 40 -> 2.021, 60 -> 2.000,
    # 120 -> 1.980
    assert t975(40) == pytest.approx(2.021, abs=0.001)
    assert t975(60) == pytest.approx(2.000, abs=0.001)
    assert t975(120) == pytest.approx(1.980, abs=0.001)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t975(0)
