"""Report options, importable without the report itself (DuckDB, NumPy, matplotlib).

The CLI builds `sweep report --max-wait/--wait-metric` from these on every start.
"""

from __future__ import annotations

WAIT_BOUND_MIN = 10.0  # default bound of the "best revenue within a wait bound" answers

# wait_metric option -> shard_metrics column (request-to-pickup wait of served requests).
WAIT_COLUMNS: dict[str, str] = {
    "mean": "wait_mean_min",
    "p50": "wait_p50_min",
    "p95": "wait_p95_min",
}
WAIT_METRICS: tuple[str, ...] = tuple(WAIT_COLUMNS)
