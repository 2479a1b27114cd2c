"""The spec's example through API Gateway event -> SQS -> handler -> S3, against moto over HTTP,
compared with the embedded runner, and the IAM action table checked against the traffic."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from sim_serverless_sweep.aws.handler import build_app
from sim_serverless_sweep.aws.permissions import (
    EVENT_SOURCE_MAPPING_ACTIONS,
    OPERATION_ACTIONS,
    RUNTIME_IAM_ACTIONS,
)
from sim_serverless_sweep.cli import main as cli_main
from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.keys import (
    DATA_DATASETS,
    data_key,
    manifest_key,
    outcome_key,
)
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan

ESM_OPERATIONS = {
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
}


def _record_calls(client: Any, calls: set[str]) -> None:
    def after_call(event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        calls.add(f"{service}.{operation}")

    client.meta.events.register("after-call", after_call)


def _expected_keys(body: bytes, prefix: str, run_date: dt.date) -> set[str]:
    request = parse_request(body)
    plan = Plan.from_request(request)
    keys = {manifest_key(prefix, request.run_id)}
    for shard in range(plan.shard_count):
        if shard in request.failure_injection_shards:
            keys.add(outcome_key(prefix, run_date, request.run_id, "failure", shard))
            continue
        keys.add(outcome_key(prefix, run_date, request.run_id, "success", shard))
        for point in plan.shard_range(shard):
            keys.update(
                data_key(prefix, d, run_date, request.run_id, shard, point) for d in DATA_DATASETS
            )
    return keys


def test_spec_example_end_to_end_matches_embedded_runner(
    stack: Any,
    make_client: Any,
    sqs: Any,
    s3: Any,
    esm: Any,
    helpers: Any,
    lambda_context: Any,
    demo_request_body: bytes,
    demo_request_path: Path,
    tmp_path: Path,
    moto_endpoint: str,
) -> None:
    runtime_s3, runtime_sqs = make_client("s3"), make_client("sqs")
    calls: set[str] = set()
    _record_calls(runtime_s3, calls)
    _record_calls(runtime_sqs, calls)
    app = build_app(stack.env(), s3=runtime_s3, sqs=runtime_sqs)

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return app.handle(event, lambda_context)

    # 1. POST the spec's example as an API Gateway HTTP API event.
    response = invoke(helpers.api_event("POST", "/sweep-run", demo_request_body.decode()))
    assert response["statusCode"] == 202, response
    accepted = json.loads(response["body"])
    assert accepted["run_id"] == "demo-run-001"
    assert (accepted["points"], accepted["shard_count"]) == (8, 4)
    assert accepted["dispatched_shards"] == [0, 1, 2, 3]
    assert accepted["status_url"] == (
        "https://abc123.execute-api.us-east-1.amazonaws.com/sweep-run/demo-run-001"
    )
    run_date = dt.date.fromisoformat(accepted["run_date"])

    # 2. The event source mapping drains the queue; shard 1 fails maxReceiveCount times.
    esm_sqs = make_client("sqs")  # the mapping's own calls, recorded apart from the runtime's
    esm_calls: set[str] = set()
    _record_calls(esm_sqs, esm_calls)
    driver = esm(stack.queue_url, stack.queue_arn, invoke, batch_size=2, client=esm_sqs)
    driver.drain()
    assert driver.item_failures == helpers.MAX_RECEIVE_COUNT
    assert driver.crashes == 0

    # 3. Its message is in the DLQ; exactly the spec's keys exist in S3.
    dead = sqs.receive_message(
        QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=1
    ).get("Messages", [])
    assert [ShardMessage.from_json(m["Body"]).shard_id for m in dead] == [1]
    assert len(dead[0]["Body"]) < 1024  # an index range, not a point list
    keys = set(helpers.list_keys(s3, stack.bucket))
    assert keys == _expected_keys(demo_request_body, stack.prefix, run_date)

    # 4. The DLQ consumer finds the failure already recorded: still exactly one.
    dlq_driver = esm(stack.dlq_url, stack.dlq_arn, invoke, client=esm_sqs)
    dlq_driver.drain()
    assert dlq_driver.item_failures == 0
    assert set(helpers.list_keys(s3, stack.bucket)) == keys
    failures = [k for k in keys if "status=failure" in k]
    assert len(failures) == 1 and "shard_id=1/" in failures[0]

    # 5. GET status.
    status = invoke(helpers.api_event("GET", "/sweep-run/demo-run-001"))
    assert status["statusCode"] == 200
    body = json.loads(status["body"])
    assert (
        body["state"],
        body["succeeded_shards"],
        body["failed_shards"],
        body["pending_shards"],
    ) == ("failed", [0, 2, 3], [1], [])

    # 6. The embedded runner on the same request: byte-identical data files...
    local = tmp_path / "embedded"
    assert (
        cli_main(
            [
                "run",
                str(demo_request_path),
                "--results",
                str(local),
                "--prefix",
                stack.prefix,
                "--workers",
                "2",
                "--json",
            ]
        )
        == 0
    )
    local_run_date = json.loads((local / manifest_key(stack.prefix, "demo-run-001")).read_text())[
        "run_date"
    ]
    assert local_run_date == accepted["run_date"]
    data_keys = sorted(
        k for k in keys if "dataset=shard_outcomes" not in k and not k.endswith("manifest.json")
    )
    assert len(data_keys) == 6 * 3
    for key in data_keys:
        cloud = s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        assert cloud == (local / key).read_bytes(), key

    # ... and identical tables read back with pyarrow's S3 filesystem and queried in DuckDB.
    endpoint = urlsplit(moto_endpoint)
    fs = pafs.S3FileSystem(
        endpoint_override=endpoint.netloc,
        scheme="http",
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
    )
    con = duckdb.connect()
    for dataset in DATA_DATASETS:
        cloud_ds = pads.dataset(
            f"{stack.bucket}/{stack.prefix}/dataset={dataset}", filesystem=fs, format="parquet"
        )
        local_ds = pads.dataset(str(local / stack.prefix / f"dataset={dataset}"), format="parquet")
        con.register("cloud", cloud_ds)
        con.register("embedded", local_ds)
        counts = con.execute(
            "SELECT (SELECT count(*) FROM cloud), (SELECT count(*) FROM embedded), "
            "(SELECT count(*) FROM (SELECT * FROM cloud EXCEPT ALL SELECT * FROM embedded)), "
            "(SELECT count(*) FROM (SELECT * FROM embedded EXCEPT ALL SELECT * FROM cloud))"
        ).fetchall()[0]
        assert counts[0] == counts[1] > 0 and counts[2:] == (0, 0), (dataset, counts)
        points = con.execute("SELECT count(DISTINCT point_index) FROM cloud").fetchall()
        assert points == [(6,)]
        con.unregister("cloud")
        con.unregister("embedded")

    # 7. Every AWS call the runtime made is covered by the declared IAM actions, and every
    #    declared runtime action was needed.
    used: dict[str, set[str]] = defaultdict(set)
    for call in calls:
        assert call in OPERATION_ACTIONS, f"{call} is not declared in permissions.py"
        for kind, action in OPERATION_ACTIONS[call]:
            used[kind].add(action)
    for kind, actions in used.items():
        assert actions <= RUNTIME_IAM_ACTIONS[kind], kind
    assert used["results_objects"] == RUNTIME_IAM_ACTIONS["results_objects"]
    assert used["results_bucket"] == RUNTIME_IAM_ACTIONS["results_bucket"]
    assert used["shard_queue"] == {"sqs:SendMessage", "sqs:GetQueueAttributes"}
    # The event source mapping polls both queues with the function's role.
    esm_actions = {ESM_OPERATIONS[call.split(".", 1)[1]] for call in esm_calls}
    assert esm_actions == EVENT_SOURCE_MAPPING_ACTIONS
    for kind in ("shard_queue", "dead_letter_queue"):
        assert RUNTIME_IAM_ACTIONS[kind] >= EVENT_SOURCE_MAPPING_ACTIONS
    assert RUNTIME_IAM_ACTIONS["shard_queue"] == used["shard_queue"] | esm_actions
