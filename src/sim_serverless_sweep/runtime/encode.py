"""Arrow tables for one point and deterministic Parquet bytes."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from sim_serverless_sweep.core.keys import Dataset
from sim_serverless_sweep.core.schemas import STORAGE_SCHEMAS


@dataclass(frozen=True, slots=True)
class PointKeys:
    """Identity of one simulation: the key columns plus its resolved parameters."""

    run_id: str
    shard_id: int
    point_index: int
    replicate: int
    params: Mapping[str, int | float]


def with_keys(dataset: Dataset, table: pa.Table, keys: PointKeys) -> pa.Table:
    """Prefix a simulation table with key and parameter columns (constant per file)."""
    schema = STORAGE_SCHEMAS[dataset]
    rows = table.num_rows
    constants: list[pa.Array] = []
    for field in schema:
        if field.name in table.column_names:
            break
        value: object
        if field.name in ("run_id", "shard_id", "point_index", "replicate"):
            value = getattr(keys, field.name)
        else:
            value = keys.params[field.name]
        constants.append(pa.repeat(pa.scalar(value, field.type), rows))
    columns = constants + [table.column(name) for name in table.column_names]
    return pa.Table.from_arrays(columns, schema=schema)


def concat(tables: Sequence[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def parquet_bytes(table: pa.Table) -> bytes:
    """Parquet with fixed writer settings, so equal tables give equal bytes."""
    sink = io.BytesIO()
    # Snappy: Athena's default codec and ~3x faster to write than zstd here, for files
    # ~20% larger. Dictionary pages only for strings: on the numeric columns they cost
    # more CPU than the bytes they save. One row group per file (a file is one point).
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    pq.write_table(
        table,
        sink,
        compression="snappy",
        use_dictionary=strings,
        write_statistics=True,
        row_group_size=1 << 20,
        store_schema=True,
    )
    return sink.getvalue()


def read_parquet_bytes(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))
