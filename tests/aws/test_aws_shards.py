"""SQS records through the handler, against moto: failures, the DLQ, duplicates, crashes."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from typing import Any

import pytest

from sim_serverless_sweep import __version__
from sim_serverless_sweep.aws.handler import build_app
from sim_serverless_sweep.aws.sqs_queue import SqsShardQueue
from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.keys import manifest_key, outcome_key
from sim_serverless_sweep.core.messages import RunManifest, ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.local.memory import MemoryStore
from sim_serverless_sweep.runtime.encode import read_parquet_bytes
from sim_serverless_sweep.runtime.shard import run_shard
from sim_serverless_sweep.service.app import logger

RUN_DATE = dt.date(2026, 1, 2)
REQUEST = {
    "run_id": "shards-run",
    "dimensions": {"num_drivers": [10, 20, 30, 40], "horizon_min": [40], "warmup_min": [10]},
    "shard_count": 2,
    "seed": 3,
    "failure_injection_shards": [1],
}


class Crash(BaseException):
    """Stands in for the runtime dying mid-shard (timeout, OOM): no except-branch sees it."""


def _message(shard_id: int) -> ShardMessage:
    request = parse_request(json.dumps(REQUEST))
    return ShardMessage.for_shard(request, RUN_DATE, Plan.from_request(request), shard_id)


@pytest.fixture(autouse=True)
def _submitted(stack: Any, s3: Any, helpers: Any) -> None:
    """The runs' manifests, as submit writes them: a message of an unknown run is refused."""
    canned = helpers.load_event("sqs_shard_batch.json")["Records"][0]["body"]
    for message in (_message(0), ShardMessage.from_json(canned)):
        accepted = dt.datetime.combine(message.run_date, dt.time(12), dt.UTC)
        manifest = RunManifest.create(message.request, accepted, __version__)
        key = manifest_key(stack.prefix, message.run_id)
        s3.put_object(Bucket=stack.bucket, Key=key, Body=manifest.to_bytes())


def _results(s3: Any, helpers: Any, stack: Any) -> list[str]:
    """Every dataset key (the manifests aside)."""
    keys: list[str] = helpers.list_keys(s3, stack.bucket, f"{stack.prefix}/dataset=")
    return keys


def _reference(shard_id: int, prefix: str) -> dict[str, bytes]:
    """Data files of one shard from the same use case on the in-memory store."""
    store = MemoryStore()
    run_shard(_message(shard_id), store, prefix, attempt=1)
    return {k: v for k, v in store.objects.items() if "dataset=shard_outcomes" not in k}


def _objects(s3: Any, helpers: Any, bucket: str) -> dict[str, bytes]:
    return {
        k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()
        for k in helpers.list_keys(s3, bucket, "sweeps/dataset=")
    }


def _data(objects: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in objects.items() if "dataset=shard_outcomes" not in k}


def _receive_one(sqs: Any, stack: Any, helpers: Any) -> dict[str, Any]:
    messages = sqs.receive_message(
        QueueUrl=stack.queue_url, MessageSystemAttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    assert len(messages) == 1
    event: dict[str, Any] = helpers.sqs_event(messages, stack.queue_arn)
    return event


def test_injected_shard_one_failure_outcome_dlq_message_no_data(
    stack: Any, s3: Any, sqs: Any, esm: Any, helpers: Any, lambda_context: Any
) -> None:
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    SqsShardQueue(sqs, stack.queue_url).send([_message(1)])
    driver = esm(stack.queue_url, stack.queue_arn, lambda e: app.handle(e, lambda_context))
    driver.drain()
    assert (driver.invocations, driver.item_failures) == (3, 3)
    keys = _results(s3, helpers, stack)
    assert keys == [outcome_key(stack.prefix, RUN_DATE, "shards-run", "failure", 1)]
    outcome = read_parquet_bytes(s3.get_object(Bucket=stack.bucket, Key=keys[0])["Body"].read())
    row = outcome.to_pylist()[0]
    assert (row["status"], row["attempts"], row["error_type"]) == ("failure", 3, "InjectedFailure")
    assert helpers.queue_depth(sqs, stack.dlq_url) == 1
    # The DLQ consumer sees the failure already recorded: still exactly one outcome.
    dlq = esm(stack.dlq_url, stack.dlq_arn, lambda e: app.handle(e, lambda_context))
    dlq.drain()
    assert _results(s3, helpers, stack) == keys
    assert helpers.queue_depth(sqs, stack.dlq_url) == 0


def test_duplicate_delivery_sequential_gives_same_objects(
    stack: Any, s3: Any, sqs: Any, helpers: Any, lambda_context: Any
) -> None:
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    SqsShardQueue(sqs, stack.queue_url).send([_message(0)])
    event = _receive_one(sqs, stack, helpers)
    assert app.handle(event, lambda_context) == {"batchItemFailures": []}
    first = _objects(s3, helpers, stack.bucket)
    assert app.handle(event, lambda_context) == {"batchItemFailures": []}
    assert _objects(s3, helpers, stack.bucket) == first
    assert _data(first) == _reference(0, stack.prefix)
    assert len(_data(first)) == 2 * 3  # 2 points x 3 datasets


def test_duplicate_delivery_concurrent_gives_same_objects_no_extra_rows(
    stack: Any, s3: Any, sqs: Any, helpers: Any, lambda_context: Any
) -> None:
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    SqsShardQueue(sqs, stack.queue_url).send([_message(0)])
    event = _receive_one(sqs, stack, helpers)
    barrier = threading.Barrier(2)
    results: list[dict[str, Any]] = []

    def deliver() -> None:
        barrier.wait()
        results.append(app.handle(event, helpers.LambdaContext()))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [{"batchItemFailures": []}] * 2
    objects = _objects(s3, helpers, stack.bucket)
    assert _data(objects) == _reference(0, stack.prefix)
    success = outcome_key(stack.prefix, RUN_DATE, "shards-run", "success", 0)
    assert set(objects) - set(_data(objects)) == {success}
    rows = sum(
        read_parquet_bytes(v).num_rows for k, v in objects.items() if "dataset=shard_metrics" in k
    )
    assert rows == 2  # one metrics row per point, no duplicates


def test_crash_mid_shard_then_retry_completes_identically(
    stack: Any,
    s3: Any,
    sqs: Any,
    esm: Any,
    helpers: Any,
    make_client: Any,
    lambda_context: Any,
) -> None:
    runtime_s3 = make_client("s3")
    app = build_app(stack.env(), s3=runtime_s3, sqs=sqs)
    puts: list[str] = []

    def crash_on_third_put(params: dict[str, Any], **_: Any) -> None:
        puts.append(params["Key"])
        if len(puts) == 3:
            raise Crash("runtime killed mid-shard")

    runtime_s3.meta.events.register("before-parameter-build.s3.PutObject", crash_on_third_put)
    SqsShardQueue(sqs, stack.queue_url).send([_message(0)])
    driver = esm(stack.queue_url, stack.queue_arn, lambda e: app.handle(e, lambda_context))
    assert driver.poll(wait=1) == 1 and driver.crashes == 1
    # Two data files were written, no outcome: the shard is still pending.
    assert len(_results(s3, helpers, stack)) == 2
    driver.drain()
    assert driver.crashes == 1 and driver.item_failures == 0
    objects = _objects(s3, helpers, stack.bucket)
    assert _data(objects) == _reference(0, stack.prefix)
    outcome = read_parquet_bytes(
        objects[outcome_key(stack.prefix, RUN_DATE, "shards-run", "success", 0)]
    ).to_pylist()[0]
    assert outcome["attempts"] == 2
    assert helpers.queue_depth(sqs, stack.dlq_url) == 0


def test_crash_on_every_attempt_is_recorded_from_the_dlq(
    stack: Any,
    s3: Any,
    sqs: Any,
    esm: Any,
    helpers: Any,
    make_client: Any,
    lambda_context: Any,
) -> None:
    runtime_s3 = make_client("s3")
    app = build_app(stack.env(), s3=runtime_s3, sqs=sqs)
    state = {"puts": 0, "crashing": True}

    def crash_after_first_put(**_: Any) -> None:
        state["puts"] += 1
        if state["crashing"] and state["puts"] % 2 == 0:
            raise Crash("runtime killed mid-shard")

    runtime_s3.meta.events.register("before-parameter-build.s3.PutObject", crash_after_first_put)
    SqsShardQueue(sqs, stack.queue_url).send([_message(0)])
    driver = esm(stack.queue_url, stack.queue_arn, lambda e: app.handle(e, lambda_context))
    driver.drain()
    assert driver.crashes == helpers.MAX_RECEIVE_COUNT
    leftover = _results(s3, helpers, stack)
    assert leftover and not any("dataset=shard_outcomes" in k for k in leftover)
    assert helpers.queue_depth(sqs, stack.dlq_url) == 1

    state["crashing"] = False
    dlq = esm(stack.dlq_url, stack.dlq_arn, lambda e: app.handle(e, lambda_context))
    dlq.drain()
    failure = outcome_key(stack.prefix, RUN_DATE, "shards-run", "failure", 0)
    assert _results(s3, helpers, stack) == [failure]  # crash leftovers removed
    row = read_parquet_bytes(
        s3.get_object(Bucket=stack.bucket, Key=failure)["Body"].read()
    ).to_pylist()[0]
    assert (row["error_type"], row["attempts"]) == ("DeadLettered", helpers.MAX_RECEIVE_COUNT)


@pytest.mark.parametrize("case", ["unknown-source", "poison-body"])
def test_unusable_records_are_reported_failed_and_nothing_is_written(
    case: str, stack: Any, s3: Any, sqs: Any, helpers: Any, lambda_context: Any
) -> None:
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    event = helpers.load_event("sqs_shard_batch.json")
    record = event["Records"][0]
    if case == "unknown-source":
        record["eventSourceARN"] = "arn:aws:sqs:us-east-1:123456789012:someone-elses-queue"
    else:
        record["eventSourceARN"] = stack.queue_arn
        record["body"] = '{"run_id": "x"}'
    response = app.handle(event, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert _results(s3, helpers, stack) == []


def test_log_lines_carry_run_id_shard_id_attempt(
    stack: Any, s3: Any, sqs: Any, helpers: Any, lambda_context: Any
) -> None:
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    event = helpers.load_event("sqs_shard_batch.json")
    event["Records"][0]["eventSourceARN"] = stack.queue_arn
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    buffer = io.StringIO()
    previous = logger.registered_handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        assert app.handle(event, lambda_context) == {"batchItemFailures": []}
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert lines
    for line in lines:
        assert (line["run_id"], line["shard_id"], line["attempt"]) == ("canned-run-001", 0, 2)
