"""The Lambda entry point itself: cold start from the environment (moto over HTTP via
AWS_ENDPOINT_URL), configuration errors naming the variable, canned events, event shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

import sim_serverless_sweep.aws.handler as handler_module
from sim_serverless_sweep.aws.config import ENV_VARS
from sim_serverless_sweep.core.contract import ConfigError
from sim_serverless_sweep.service.app import UnsupportedEvent


@pytest.fixture
def cold(
    monkeypatch: pytest.MonkeyPatch, aws_kwargs: dict[str, str]
) -> Iterator[pytest.MonkeyPatch]:
    """A fresh execution environment: no app built yet, AWS pointed at moto."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_kwargs["endpoint_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", aws_kwargs["region_name"])
    monkeypatch.setattr(handler_module, "_app", None)
    yield monkeypatch


def _set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_cold_start_serves_canned_api_and_sqs_events(
    cold: pytest.MonkeyPatch, stack: Any, s3: Any, helpers: Any, lambda_context: Any
) -> None:
    _set(cold, stack.env())
    post = handler_module.handler(helpers.load_event("api_post_sweep_run.json"), lambda_context)
    assert post["statusCode"] == 202, post
    assert json.loads(post["body"])["shard_count"] == 2
    built = handler_module._app
    get = handler_module.handler(helpers.load_event("api_get_sweep_run.json"), lambda_context)
    assert get["statusCode"] == 200
    assert json.loads(get["body"])["pending_shards"] == [0, 1]
    assert handler_module._app is built  # adapters are built once per environment

    batch = helpers.load_event("sqs_shard_batch.json")
    record = batch["Records"][0]
    record["eventSourceARN"] = stack.queue_arn
    # The POST fixed the run's run_date (today); a message claiming another is refused.
    body = json.loads(record["body"])
    record["body"] = json.dumps({**body, "run_date": json.loads(get["body"])["run_date"]})
    assert handler_module.handler(batch, lambda_context) == {"batchItemFailures": []}
    assert any(
        "status=success/shard_id=0/part-0.parquet" in k for k in helpers.list_keys(s3, stack.bucket)
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SHARD_QUEUE_URL": ""}, "SHARD_QUEUE_URL"),
        ({"SWEEP_RESULTS_BUCKET": ""}, "SWEEP_RESULTS_BUCKET"),
        ({"SHARD_DLQ_ARN": ""}, "SHARD_DLQ_ARN"),
        ({"SHARD_DLQ_ARN": "not-an-arn"}, "SHARD_DLQ_ARN"),
        ({"SHARD_DLQ_ARN": "arn:aws:sqs:us-east-1:123456789012:other-dlq"}, "SHARD_DLQ_ARN"),
        ({"MAX_SHARDS": "many"}, "MAX_SHARDS"),
        ({"MAX_RECEIVE_COUNT": "0"}, "MAX_RECEIVE_COUNT"),
        ({"MAX_RECEIVE_COUNT": "5"}, "MAX_RECEIVE_COUNT"),  # the queue says 3
        ({"SWEEP_RESULTS_PREFIX": "../up"}, "SWEEP_RESULTS_PREFIX"),
        ({"SHARD_QUEUE_URL": "not a url"}, "SHARD_QUEUE_URL"),
    ],
)
def test_bad_configuration_fails_the_cold_start_naming_the_variable(
    change: dict[str, str],
    named: str,
    cold: pytest.MonkeyPatch,
    stack: Any,
    helpers: Any,
    lambda_context: Any,
) -> None:
    _set(cold, stack.env(**change))
    with pytest.raises(ConfigError, match=named):
        handler_module.handler(helpers.load_event("api_get_sweep_run.json"), lambda_context)
    assert handler_module._app is None  # the next invocation tries again


def test_queue_without_redrive_policy_is_a_configuration_error(
    cold: pytest.MonkeyPatch, stack: Any, sqs: Any, helpers: Any, lambda_context: Any
) -> None:
    plain = sqs.create_queue(QueueName=f"plain-{stack.bucket}")["QueueUrl"]
    _set(cold, stack.env(SHARD_QUEUE_URL=plain))
    with pytest.raises(ConfigError, match="SHARD_QUEUE_URL: the queue has no redrive policy"):
        handler_module.handler(helpers.load_event("api_get_sweep_run.json"), lambda_context)


def test_unsupported_event_shape_raises(
    cold: pytest.MonkeyPatch, stack: Any, lambda_context: Any
) -> None:
    _set(cold, stack.env())
    with pytest.raises(UnsupportedEvent):
        handler_module.handler({"detail-type": "Scheduled Event"}, lambda_context)
    with pytest.raises(UnsupportedEvent):
        handler_module.handler({"Records": [{"eventSource": "aws:s3"}]}, lambda_context)


def test_import_is_cheap_and_side_effect_free() -> None:
    code = (
        "import os, sys; [os.environ.pop(k, None) for k in list(os.environ) "
        "if k.startswith(('SHARD_', 'SWEEP_', 'MAX_'))]; "
        "import sim_serverless_sweep.aws.handler as h; "
        "print(h._app is None, 'boto3' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False"]
