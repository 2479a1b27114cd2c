"""Lambda entry point: build the S3/SQS adapters once, then hand every event to SweepApp.

Configuration is read and checked on the first invocation of an execution environment
(the cold start); a bad variable fails that invocation with a message naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sim_serverless_sweep.aws.config import (
    MAX_RECEIVE_COUNT,
    SHARD_DLQ_ARN,
    SHARD_QUEUE_URL,
    RuntimeConfig,
)
from sim_serverless_sweep.core.contract import ConfigError
from sim_serverless_sweep.service.app import SweepApp, logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

_app: SweepApp | None = None


def build_app(
    environ: Mapping[str, str],
    *,
    s3: S3Client | None = None,
    sqs: SQSClient | None = None,
) -> SweepApp:
    """Wire S3Store + SqsShardQueue from the environment; ConfigError names the bad variable."""
    from sim_serverless_sweep.aws.clients import s3_client, sqs_client
    from sim_serverless_sweep.aws.s3_store import S3Store
    from sim_serverless_sweep.aws.sqs_queue import SqsShardQueue

    config = RuntimeConfig.from_env(environ)
    sqs = sqs or sqs_client()
    check_redrive(sqs, config)
    return SweepApp(
        store=S3Store(s3 or s3_client(), config.bucket),
        queue=SqsShardQueue(sqs, config.queue_url),
        prefix=config.prefix,
        limits=config.limits,
        max_receive_count=config.max_receive_count,
        queue_name=config.queue_name,
        dlq_arn=config.dlq_arn,
    )


def check_redrive(sqs: SQSClient, config: RuntimeConfig) -> None:
    """The failure-recording contract needs MAX_RECEIVE_COUNT and the DLQ to match the queue."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=config.queue_url, AttributeNames=["RedrivePolicy"]
        ).get("Attributes", {})
    except (ClientError, BotoCoreError) as exc:
        raise ConfigError(
            f"{SHARD_QUEUE_URL}: cannot read the queue's attributes ({exc})"
        ) from None
    if "RedrivePolicy" not in attributes:
        raise ConfigError(
            f"{SHARD_QUEUE_URL}: the queue has no redrive policy (a DLQ with "
            f"maxReceiveCount = {MAX_RECEIVE_COUNT} is required)"
        )
    policy = json.loads(attributes["RedrivePolicy"])
    queue_count = int(policy.get("maxReceiveCount", 0))
    if queue_count != config.max_receive_count:
        raise ConfigError(
            f"{MAX_RECEIVE_COUNT}: {config.max_receive_count} but the queue's "
            f"redrive maxReceiveCount is {queue_count}; they must be equal"
        )
    if policy.get("deadLetterTargetArn") != config.dlq_arn:
        raise ConfigError(
            f"{SHARD_DLQ_ARN}: {config.dlq_arn!r} but the queue redrives to "
            f"{policy.get('deadLetterTargetArn')!r}"
        )


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """AWS Lambda handler for API Gateway HTTP API (payload 2.0) and SQS events."""
    global _app
    if _app is None:
        _app = build_app(os.environ)
    return _app.handle(event, context)
