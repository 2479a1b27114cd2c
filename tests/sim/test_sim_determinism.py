"""Same (params, seed) -> same bytes, in any process and in any order."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pyarrow as pa

from sim_serverless_sweep.sim import SimResult, simulate

PARAMS = {"num_drivers": 80, "num_riders": 500, "horizon_min": 240, "warmup_min": 60}


def digest(result: SimResult) -> str:
    """SHA-256 of the three tables in Arrow IPC form (schema metadata included)."""
    h = hashlib.sha256()
    for table in (result.trips, result.snapshots, result.metrics):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()


CHILD = """
import hashlib, sys, pyarrow as pa
from sim_serverless_sweep.sim import simulate
h = hashlib.sha256()
r = simulate({params!r}, {seed})
for t in (r.trips, r.snapshots, r.metrics):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    h.update(sink.getvalue().to_pybytes())
print(h.hexdigest())
"""


def test_same_bytes_in_two_separate_processes() -> None:
    code = CHILD.format(params=PARAMS, seed=7)
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert outputs == {digest(simulate(PARAMS, 7))}


def test_interleaved_runs_do_not_disturb_each_other() -> None:
    alone_a, alone_b = digest(simulate(PARAMS, 1)), digest(simulate(PARAMS, 2))
    # Interleave with other work on numpy's global generator and other simulations.
    np.random.seed(123)
    np.random.random(10)
    results = [simulate(PARAMS, 2), simulate({**PARAMS, "num_drivers": 30}, 9), simulate(PARAMS, 1)]
    assert digest(results[2]) == alone_a
    assert digest(results[0]) == alone_b


def test_seed_zero_is_a_real_seed() -> None:
    zero = simulate(PARAMS, 0)
    assert zero.trips.num_rows > 0
    assert digest(zero) == digest(simulate(PARAMS, 0))
    assert digest(zero) != digest(simulate(PARAMS, 1))


def test_seed_sequence_is_not_consumed() -> None:
    """Passing the same SeedSequence twice gives the same run (spawn would not)."""
    seq = np.random.SeedSequence(2024, spawn_key=(3,))
    first = digest(simulate(PARAMS, seq))
    assert digest(simulate(PARAMS, seq)) == first
    assert digest(simulate(PARAMS, np.random.SeedSequence(2024, spawn_key=(4,)))) != first


def test_int_and_float_spellings_of_a_parameter_agree() -> None:
    assert digest(simulate({**PARAMS, "commission_rate": 0}, 3)) == digest(
        simulate({**PARAMS, "commission_rate": 0.0}, 3)
    )


def test_a_longer_horizon_extends_the_same_run() -> None:
    """Streams are drawn in fixed blocks: the first 4 hours of an 8-hour run are the
    4-hour run (snapshots equal; trips equal up to what the earlier end cut off)."""
    short = simulate({**PARAMS, "horizon_min": 240}, 5)
    long = simulate({**PARAMS, "horizon_min": 480}, 5)
    assert long.snapshots.slice(0, 240).equals(short.snapshots)
    ended = [
        name
        for name in short.trips.column_names
        if name not in ("trip_status", "in_window")
        and not name.startswith(("match", "pickup", "dropoff", "cancel", "driver", "wait"))
        and name not in ("fare", "commission", "driver_pay")
    ]
    assert long.trips.slice(0, short.trips.num_rows).select(ended).equals(short.trips.select(ended))
