"""Arrow schemas of the four stored datasets.

Data datasets = key columns + every model parameter (swept or default, so the
schema is fixed and a query can GROUP BY any parameter) + the simulation's own
table. Partition keys are also stored as columns so each file stands alone.
"""

from __future__ import annotations

import pyarrow as pa

from sim_serverless_sweep.core.keys import Dataset
from sim_serverless_sweep.sim import (
    METRICS_SCHEMA,
    PARAMETERS,
    SNAPSHOTS_SCHEMA,
    TRIPS_SCHEMA,
)

KEY_FIELDS: tuple[pa.Field, ...] = (
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("shard_id", pa.int32(), nullable=False),
    pa.field("point_index", pa.int64(), nullable=False),
    pa.field("replicate", pa.int32(), nullable=False),
)

PARAM_FIELDS: tuple[pa.Field, ...] = tuple(
    pa.field(
        name,
        pa.int64() if spec.kind == "int" else pa.float64(),
        nullable=False,
        metadata={"unit": spec.unit, "doc": spec.description},
    )
    for name, spec in PARAMETERS.items()
)


def _data_schema(sim_schema: pa.Schema) -> pa.Schema:
    return pa.schema([*KEY_FIELDS, *PARAM_FIELDS, *sim_schema])


SHARD_METRICS_SCHEMA = _data_schema(METRICS_SCHEMA)
TRIP_DATA_SCHEMA = _data_schema(TRIPS_SCHEMA)
SNAPSHOT_COUNTS_SCHEMA = _data_schema(SNAPSHOTS_SCHEMA)

SHARD_OUTCOMES_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("shard_id", pa.int32(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("attempts", pa.int32(), nullable=False),
        pa.field("points", pa.int64(), nullable=False),
        pa.field("first_point_index", pa.int64(), nullable=False),
        pa.field("last_point_index", pa.int64(), nullable=False),
        pa.field("replications", pa.int32(), nullable=False),
        pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("finished_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("error_type", pa.string(), nullable=True),
        pa.field("error_message", pa.string(), nullable=True),
        pa.field("code_version", pa.string(), nullable=False),
        pa.field(
            "data_files",
            pa.string(),
            nullable=True,
            metadata={
                "doc": "Success only: JSON array of the data files it committed, "
                '[{"key", "sha256", "size"}] sorted by key (SHA-256 hex, size in bytes).'
            },
        ),
    ]
)

DATASET_SCHEMAS: dict[Dataset, pa.Schema] = {
    "shard_metrics": SHARD_METRICS_SCHEMA,
    "trip_data": TRIP_DATA_SCHEMA,
    "snapshot_counts": SNAPSHOT_COUNTS_SCHEMA,
    "shard_outcomes": SHARD_OUTCOMES_SCHEMA,
}

# What is written: the same fields without unit/doc metadata, which would otherwise
# add ~10 KB to every file (the documented schemas above stay the reference).
STORAGE_SCHEMAS: dict[Dataset, pa.Schema] = {
    dataset: pa.schema([field.remove_metadata() for field in schema])
    for dataset, schema in DATASET_SCHEMAS.items()
}
