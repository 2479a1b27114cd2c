"""DuckDB over the results folder, with views named like the Athena tables.

Queries are written in Trino (Athena) SQL; each connection gets macro shims for the
few Trino function names DuckDB lacks (see docs/analytics.md), and a ``point_summary``
view (mean and 95% CI per point and metric, see ``analytics.summary``).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from sim_serverless_sweep.analytics.summary import point_summary_sql
from sim_serverless_sweep.core.keys import ALL_DATASETS, PART_FILE, dataset_root
from sim_serverless_sweep.core.schemas import DATASET_SCHEMAS

# Pinned so DuckDB never guesses partition types differently from Athena.
HIVE_TYPES = {
    "run_date": "DATE",
    "run_id": "VARCHAR",
    "status": "VARCHAR",
    "shard_id": "INTEGER",
    "point_index": "BIGINT",
}

# Trino names DuckDB lacks -> DuckDB macro (created only when the name is missing, so a
# built-in of the same name is never replaced). Aggregate macros cannot take FILTER,
# DISTINCT or ORDER BY: write approx_percentile(CASE WHEN cond THEN x END, p) instead.
TRINO_SHIMS: dict[str, str] = {
    "approx_percentile": "(x, p) AS approx_quantile(x, p)",
    "approx_distinct": "(x) AS approx_count_distinct(x)",
    "regexp_like": "(s, pattern) AS regexp_matches(s, pattern)",
    "day_of_week": "(d) AS isodow(d)",
    "to_unixtime": "(t) AS epoch(t)",
}


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _install_shims(con: duckdb.DuckDBPyConnection) -> None:
    existing = {
        row[0]
        for row in con.execute("SELECT DISTINCT function_name FROM duckdb_functions()").fetchall()
    }
    for name, body in TRINO_SHIMS.items():
        if name not in existing:
            con.execute(f"CREATE MACRO {name}{body}")


def _file_view(con: duckdb.DuckDBPyConnection, dataset: str, folder: Path) -> None:
    pattern = _sql_string(f"{folder.as_posix()}/**/{PART_FILE}")
    hive_types = ", ".join(
        f"{_sql_string(k)}: {v}"
        for k, v in HIVE_TYPES.items()
        if k != "point_index" or dataset != "shard_outcomes"
    )
    con.execute(
        f"CREATE VIEW _{dataset}_files AS SELECT * EXCLUDE (dataset) FROM read_parquet("
        f"{pattern}, hive_partitioning = true, hive_types = {{{hive_types}}}, "
        "union_by_name = true)"
    )


def _empty_view(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    schema: pa.Schema = DATASET_SCHEMAS[dataset]  # type: ignore[index]
    empty = pa.Table.from_batches([], schema=schema)
    con.register(f"_{dataset}_empty", empty)
    extra = ", CAST(NULL AS DATE) AS run_date"
    if "status" not in schema.names:
        extra += ", CAST(NULL AS VARCHAR) AS status"
    con.execute(f"CREATE VIEW _{dataset}_files AS SELECT *{extra} FROM _{dataset}_empty")


def connect(results: Path, prefix: str) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with one view per dataset over ``results/prefix``, plus point_summary.

    Data views hold only shards with a success outcome. A dataset with no files yet gets
    an empty view with the writer's schema.

    >>> con = connect(Path("/nonexistent"), "sweeps")
    >>> con.execute("SELECT count(*) FROM point_summary").fetchall()
    [(0,)]
    """
    con = duckdb.connect(":memory:")
    _install_shims(con)
    for dataset in ALL_DATASETS:
        folder = results / dataset_root(prefix, dataset)
        has_files = folder.is_dir() and any(folder.glob(f"**/{PART_FILE}"))
        if has_files:
            _file_view(con, dataset, folder)
        else:
            _empty_view(con, dataset)
    con.execute("CREATE VIEW shard_outcomes AS SELECT * FROM _shard_outcomes_files")
    # Data counts only once its shard's success outcome exists (written last): files of a
    # shard still running, or left by a crashed attempt, are never read.
    for dataset in ALL_DATASETS:
        if dataset != "shard_outcomes":
            con.execute(
                f"CREATE VIEW {dataset} AS SELECT d.* FROM _{dataset}_files AS d "
                "WHERE EXISTS (SELECT 1 FROM _shard_outcomes_files AS o "
                "WHERE o.status = 'success' AND o.run_id = d.run_id "
                "AND o.run_date = d.run_date AND o.shard_id = d.shard_id)"
            )
    con.execute(f"CREATE VIEW point_summary AS {point_summary_sql()}")
    return con
