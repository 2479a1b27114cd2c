"""Calibration runs points through run_shard: the worker's keys and bytes, one replicate."""

from __future__ import annotations

import json

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.keys import parse_key
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.local.memory import MemoryStore
from sim_serverless_sweep.runtime.calibrate import CALIBRATION_PREFIX, time_points
from sim_serverless_sweep.runtime.shard import run_shard

BODY = {
    "run_id": "cal",
    "dimensions": {"num_drivers": [20, 30, 40, 50], "horizon_min": [60], "warmup_min": [10]},
    "shard_count": 2,
    "seed": 5,
}


def data_files(store: MemoryStore) -> dict[str, bytes]:
    return {k: v for k, v in store.objects.items() if "dataset=shard_outcomes" not in k}


def test_calibration_writes_exactly_what_a_run_writes_for_those_points() -> None:
    # replicated and with shard 1 injected: calibration still runs one replicate of point 3
    request = parse_request(
        json.dumps({**BODY, "replications": 3, "failure_injection_shards": [1]})
    )
    store = MemoryStore()
    timings = time_points(request, [3, 0], store)

    assert [t.point_index for t in timings] == [3, 0]
    assert all(t.seconds > 0 for t in timings)
    calibrated = data_files(store)
    parsed = [parse_key(k) for k in calibrated]
    assert {(p.point_index, p.shard_id) for p in parsed} == {(3, 1), (0, 0)}
    assert len(calibrated) == 2 * 3  # three datasets per point
    run_date = parsed[0].run_date

    # the same points in a real run of the request with one replication
    single = parse_request(json.dumps(BODY))
    plan = Plan.from_request(single)
    run = MemoryStore()
    for shard_id in range(plan.shard_count):
        message = ShardMessage.for_shard(single, run_date, plan, shard_id)
        run_shard(message, run, CALIBRATION_PREFIX, 1)
    assert calibrated == {k: v for k, v in data_files(run).items() if k in calibrated}
    for timing in timings:
        files = [v for k, v in calibrated.items() if f"/point_index={timing.point_index}/" in k]
        assert timing.stored_bytes == sum(len(v) for v in files)


def test_budget_stops_after_the_first_point() -> None:
    request = parse_request(json.dumps(BODY))
    assert [t.point_index for t in time_points(request, [2, 1, 0], MemoryStore(), budget_s=0)] == [
        2
    ]
    assert time_points(request, [], MemoryStore()) == []
