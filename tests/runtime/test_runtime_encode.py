"""Key columns and the Parquet writer settings: what is stored reads back exactly."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim_serverless_sweep.core.keys import DATA_DATASETS
from sim_serverless_sweep.core.schemas import STORAGE_SCHEMAS
from sim_serverless_sweep.runtime.encode import (
    PointKeys,
    constant_column,
    key_columns,
    parquet_bytes,
    read_parquet_bytes,
    with_keys,
)
from sim_serverless_sweep.sim import resolve_params, simulate

POINT = {"num_drivers": 30, "horizon_min": 120, "warmup_min": 30, "commission_rate": 0.15}


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    result = simulate(POINT, 11)
    keys = PointKeys("run-1", 3, 17, 0, resolve_params(POINT))
    return {
        "shard_metrics": with_keys("shard_metrics", result.metrics, keys),
        "trip_data": with_keys("trip_data", result.trips, keys),
        "snapshot_counts": with_keys("snapshot_counts", result.snapshots, keys),
    }


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        (pa.int32(), 7),
        (pa.int64(), 2**62),
        (pa.int64(), -5),
        (pa.float64(), 0.1),
        (pa.float64(), 3),
        (pa.string(), "run-1"),
    ],
)
@pytest.mark.parametrize("rows", [0, 1, 1000])
def test_constant_column_equals_repeat(type_: pa.DataType, value: object, rows: int) -> None:
    column = constant_column(type_, value, rows)
    column.validate(full=True)
    assert column.equals(pa.repeat(pa.scalar(value, type_), rows))


@pytest.mark.parametrize(("type_", "value"), [(pa.int32(), 2**31), (pa.int64(), -(2**63) - 1)])
def test_constant_column_refuses_values_that_do_not_fit(type_: pa.DataType, value: int) -> None:
    with pytest.raises(OverflowError):
        constant_column(type_, value, 3)


def test_key_columns_match_a_plain_construction(tables: dict[str, pa.Table]) -> None:
    result = simulate(POINT, 11)
    keys = PointKeys("run-1", 3, 17, 0, resolve_params(POINT))
    raw = {"shard_metrics": result.metrics, "trip_data": result.trips}
    raw["snapshot_counts"] = result.snapshots
    shared = key_columns(keys, max(t.num_rows for t in raw.values()))
    for dataset, table in raw.items():
        schema = STORAGE_SCHEMAS[dataset]
        lead = len(schema) - table.num_columns
        values = {"run_id": "run-1", "shard_id": 3, "point_index": 17, "replicate": 0}
        values.update(resolve_params(POINT))
        leading = [
            pa.repeat(pa.scalar(values[f.name], f.type), table.num_rows)
            for f in list(schema)[:lead]
        ]
        plain = pa.Table.from_arrays(leading + table.columns, schema=schema)
        assert with_keys(dataset, table, keys, shared).equals(plain)
        assert tables[dataset].equals(plain)


@pytest.mark.parametrize("dataset", DATA_DATASETS)
def test_data_files_read_back_with_the_storage_schema(
    tables: dict[str, pa.Table], dataset: str
) -> None:
    data = parquet_bytes(tables[dataset])
    back = read_parquet_bytes(data)
    assert back.schema.equals(STORAGE_SCHEMAS[dataset])  # no embedded Arrow schema needed
    assert back.equals(tables[dataset])
    assert parquet_bytes(tables[dataset]) == data  # deterministic bytes


def test_money_is_stored_as_int64_decimal(tables: dict[str, pa.Table]) -> None:
    data = parquet_bytes(tables["trip_data"])
    schema = pq.ParquetFile(io.BytesIO(data)).schema
    fare = schema.column(tables["trip_data"].schema.get_field_index("fare"))
    assert fare.physical_type == "INT64"
    assert str(fare.logical_type) == "Decimal(precision=12, scale=2)"
    fares = [f for f in read_parquet_bytes(data).column("fare").to_pylist() if f is not None]
    assert fares and all(isinstance(f, Decimal) and f.as_tuple().exponent == -2 for f in fares)


def test_outcome_rows_read_back_with_timezone() -> None:
    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    row = {
        "run_id": "r",
        "shard_id": 0,
        "status": "failure",
        "attempts": 3,
        "points": 2,
        "first_point_index": 0,
        "last_point_index": 1,
        "replications": 1,
        "started_at": now,
        "finished_at": now,
        "duration_s": 0.0,
        "error_type": "InjectedFailure",
        "error_message": "boom",
        "code_version": "0",
        "data_files": None,
    }
    table = pa.Table.from_pylist([row], schema=STORAGE_SCHEMAS["shard_outcomes"])
    back = read_parquet_bytes(parquet_bytes(table))
    assert back.schema.equals(STORAGE_SCHEMAS["shard_outcomes"])
    assert back.to_pylist() == [row]


def test_workers_do_not_import_what_they_do_not_use() -> None:
    # pyarrow.compute costs ~80 ms per worker; rich is only for a shown progress bar.
    code = (
        "import sys\n"
        "from sim_serverless_sweep.sim import simulate\n"
        "from sim_serverless_sweep.runtime import shard\n"
        "simulate({'num_drivers': 20, 'horizon_min': 60, 'warmup_min': 10}, 1)\n"
        "print(sorted(m for m in ('pyarrow.compute', 'rich', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
