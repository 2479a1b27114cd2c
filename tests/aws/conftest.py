"""moto in server mode on a loopback port, the AWS resources, and an event-source-mapping driver.

Everything talks to moto over HTTP with real boto3 clients; nothing is mocked in-process.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from sim_serverless_sweep.aws.clients import CLIENT_CONFIG
from sim_serverless_sweep.aws.config import ENV_VARS

EVENTS = Path(__file__).resolve().parent.parent / "events"
REGION = "us-east-1"
MAX_RECEIVE_COUNT = 3
Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "sweep-runtime"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sweep-runtime"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Stack:
    """One test's bucket, shard queue and DLQ (unique names: tests share one moto)."""

    bucket: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    prefix: str = "sweeps"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "SHARD_QUEUE_URL": self.queue_url,
            "SWEEP_RESULTS_BUCKET": self.bucket,
            "SWEEP_RESULTS_PREFIX": self.prefix,
            "MAX_SHARDS": "1000",
            "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
            "SHARD_DLQ_ARN": self.dlq_arn,
        }
        assert set(env) == set(ENV_VARS)
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_kwargs(moto_endpoint: str) -> dict[str, str]:
    return {
        "endpoint_url": moto_endpoint,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }


@pytest.fixture(scope="session")
def make_client(aws_kwargs: dict[str, str]) -> Callable[[str], Any]:
    """A fresh client (own session, own event hooks) with the runtime's retry config."""

    def make(service: str) -> Any:
        return boto3.session.Session().client(service, config=CLIENT_CONFIG, **aws_kwargs)

    return make


@pytest.fixture(scope="session")
def s3(make_client: Callable[[str], Any]) -> Any:
    return make_client("s3")


@pytest.fixture(scope="session")
def sqs(make_client: Callable[[str], Any]) -> Any:
    return make_client("sqs")


def create_stack(s3: Any, sqs: Any, *, visibility: int = 1) -> Stack:
    name = f"t{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=f"{name}-results")
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    queue_url = sqs.create_queue(
        QueueName=f"{name}-shards",
        Attributes={"VisibilityTimeout": str(visibility), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return Stack(f"{name}-results", queue_url, queue_arn, dlq_url, dlq_arn)


@pytest.fixture
def stack(s3: Any, sqs: Any) -> Stack:
    return create_stack(s3, sqs)


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def api_event(
    method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A payload-2.0 event from the canned one, for another method/path/body."""
    event = copy.deepcopy(load_event("api_post_sweep_run.json"))
    event["routeKey"] = "$default"
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    if headers is not None:
        event["headers"].update(headers)
    if body is None:
        event.pop("body", None)
    else:
        event["body"] = body
    return event


def sqs_event(messages: list[dict[str, Any]], source_arn: str) -> dict[str, Any]:
    """An SQS Lambda event for received messages, shaped like the canned record."""
    template = load_event("sqs_shard_batch.json")["Records"][0]
    records = []
    for message in messages:
        record = copy.deepcopy(template)
        record.update(
            messageId=message["MessageId"],
            receiptHandle=message["ReceiptHandle"],
            body=message["Body"],
            md5OfBody=message["MD5OfBody"],
            eventSourceARN=source_arn,
            awsRegion=REGION,
        )
        record["attributes"] = {k: v for k, v in message["Attributes"].items()}
        records.append(record)
    return {"Records": records}


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Visible + in-flight + delayed messages."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


@dataclass
class EventSourceMapping:
    """What Lambda's SQS event source mapping does, over real SQS calls.

    Receive a batch, invoke with an SQS event, delete the records not listed in
    batchItemFailures; if the invocation raises, delete nothing (the whole batch
    reappears after the visibility timeout, and SQS redrives it after maxReceiveCount).
    """

    sqs: Any
    queue_url: str
    queue_arn: str
    invoke: Invoke
    batch_size: int = 10
    invocations: int = 0
    crashes: int = 0
    item_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def poll(self, wait: int = 0) -> int:
        """One receive + invoke + delete round; the number of records delivered."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            MessageSystemAttributeNames=["All"],
            WaitTimeSeconds=wait,
        ).get("Messages", [])
        if not messages:
            return 0
        with self.lock:
            self.invocations += 1
        try:
            result = self.invoke(sqs_event(messages, self.queue_arn))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # a crashed invocation: nothing is deleted
            with self.lock:
                self.crashes += 1
            return len(messages)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        with self.lock:
            self.item_failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
            assert not response.get("Failed"), response
        return len(messages)

    def drain(self, timeout: float = 60) -> None:
        """Poll until the queue holds nothing visible, in flight or delayed."""
        deadline = time.monotonic() + timeout
        while queue_depth(self.sqs, self.queue_url):
            assert time.monotonic() < deadline, "queue did not drain"
            if not self.poll(wait=1):
                time.sleep(0.05)


@pytest.fixture
def esm(sqs: Any) -> Callable[..., EventSourceMapping]:
    def make(
        queue_url: str, queue_arn: str, invoke: Invoke, batch_size: int = 10, client: Any = None
    ) -> EventSourceMapping:
        return EventSourceMapping(client or sqs, queue_url, queue_arn, invoke, batch_size)

    return make


def list_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


@pytest.fixture(scope="session")
def helpers() -> Any:
    """Module-level helpers for test files (importlib mode cannot import conftest)."""

    class Helpers:
        api_event = staticmethod(api_event)
        sqs_event = staticmethod(sqs_event)
        load_event = staticmethod(load_event)
        queue_depth = staticmethod(queue_depth)
        list_keys = staticmethod(list_keys)
        create_stack = staticmethod(create_stack)
        LambdaContext = LambdaContext
        MAX_RECEIVE_COUNT = MAX_RECEIVE_COUNT

    return Helpers
