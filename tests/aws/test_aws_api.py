"""The HTTP API route through the handler, against moto: 400/413/415/409/404/405, resubmit,
status, and SendMessageBatch partial failures."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sim_serverless_sweep.aws.handler import build_app
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.service.app import SweepApp

SMALL = {
    "run_id": "api-small",
    "dimensions": {"num_drivers": [10, 20, 30], "horizon_min": [40], "warmup_min": [10]},
    "shard_count": 3,
    "seed": 5,
}


def _text(raw: Any) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw)


@pytest.fixture(scope="module")
def api(s3: Any, sqs: Any, helpers: Any) -> tuple[Any, SweepApp]:
    """One stack for the read-mostly cases of this module."""
    stack = helpers.create_stack(s3, sqs)
    return stack, build_app(stack.env(), s3=s3, sqs=sqs)


def _call(
    app: SweepApp,
    helpers: Any,
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    response = app.handle(helpers.api_event(method, path, body, headers), helpers.LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_bad_request_is_rejected_with_field_and_nothing_is_written(
    api: tuple[Any, SweepApp],
    s3: Any,
    sqs: Any,
    helpers: Any,
    bad_request: tuple[str, Any, str, str],
) -> None:
    case, raw, field, rule = bad_request
    stack, app = api
    text = _text(raw)
    status, body = _call(app, helpers, "POST", "/sweep-run", text)
    too_large = len(text.encode()) > app.limits.max_body_bytes
    assert status == (413 if too_large else 400), (case, body)
    fields = {p["field"]: p for p in body["problems"]}
    assert field in fields, (case, body)
    assert rule in fields[field]["message"], (case, fields[field])
    assert all(p["rule"] and p["message"] for p in body["problems"])
    assert helpers.list_keys(s3, stack.bucket) == []
    assert helpers.queue_depth(sqs, stack.queue_url) == 0


def test_non_json_content_type_is_415(api: tuple[Any, SweepApp], helpers: Any) -> None:
    _, app = api
    status, body = _call(
        app, helpers, "POST", "/sweep-run", json.dumps(SMALL), {"content-type": "application/xml"}
    )
    assert status == 415
    assert body["problems"][0]["field"] == "content-type"


def test_curl_default_content_type_is_parsed_as_json(helpers: Any, s3: Any, sqs: Any) -> None:
    stack = helpers.create_stack(s3, sqs)
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    status, body = _call(
        app,
        helpers,
        "POST",
        "/sweep-run",
        json.dumps(SMALL),
        {"content-type": "application/x-www-form-urlencoded"},
    )
    assert status == 202, body


def test_base64_body_and_invalid_base64(helpers: Any, s3: Any, sqs: Any) -> None:
    stack = helpers.create_stack(s3, sqs)
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    event = helpers.api_event(
        "POST", "/sweep-run", base64.b64encode(json.dumps(SMALL).encode()).decode()
    )
    event["isBase64Encoded"] = True
    assert app.handle(event, helpers.LambdaContext())["statusCode"] == 202
    event["body"] = "%%% not base64"
    response = app.handle(event, helpers.LambdaContext())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["problems"][0]["field"] == "request"


def test_oversized_body_is_413_before_parsing(api: tuple[Any, SweepApp], helpers: Any) -> None:
    _, app = api
    status, body = _call(app, helpers, "POST", "/sweep-run", "x" * (64 * 1024 + 1))
    assert status == 413
    assert body["problems"][0]["field"] == "request"
    assert "limit is 65536 bytes" in body["problems"][0]["rule"]


def test_routes_404_405_and_bad_run_id(api: tuple[Any, SweepApp], helpers: Any) -> None:
    _, app = api
    assert _call(app, helpers, "GET", "/sweep-run/no-such-run")[0] == 404
    assert _call(app, helpers, "GET", "/elsewhere")[0] == 404
    status, body = _call(app, helpers, "DELETE", "/sweep-run")
    assert status == 405 and "POST" in body["message"]
    status, body = _call(app, helpers, "GET", "/sweep-run/.hidden")
    assert status == 400 and body["problems"][0]["field"] == "run_id"


def test_resubmit_conflict_and_status(
    helpers: Any, s3: Any, sqs: Any, esm: Any, lambda_context: Any
) -> None:
    stack = helpers.create_stack(s3, sqs)
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    text = json.dumps(SMALL)
    status, first = _call(app, helpers, "POST", "/sweep-run", text)
    assert status == 202 and first["created"] and first["dispatched_shards"] == [0, 1, 2]
    assert helpers.queue_depth(sqs, stack.queue_url) == 3

    status, body = _call(app, helpers, "GET", "/sweep-run/api-small")
    assert status == 200
    assert (body["state"], body["pending_shards"]) == ("running", [0, 1, 2])

    # Same run_id, different request: 409, nothing more enqueued.
    status, body = _call(app, helpers, "POST", "/sweep-run", json.dumps({**SMALL, "seed": 6}))
    assert status == 409 and body["problems"][0]["field"] == "run_id"
    assert "(seed: stored 5, this request 6)" in body["problems"][0]["rule"]
    assert body["problems"][0]["value"] == "api-small"
    assert helpers.queue_depth(sqs, stack.queue_url) == 3

    # Run everything, then resubmit: same plan, nothing to dispatch -> 200.
    esm(stack.queue_url, stack.queue_arn, lambda e: app.handle(e, lambda_context)).drain()
    status, again = _call(app, helpers, "POST", "/sweep-run", text)
    assert status == 200
    assert not again["created"] and again["dispatched_shards"] == []
    assert again["already_succeeded_shards"] == [0, 1, 2]
    assert {k: again[k] for k in ("run_id", "run_date", "points", "shard_count")} == {
        k: first[k] for k in ("run_id", "run_date", "points", "shard_count")
    }
    assert helpers.queue_depth(sqs, stack.queue_url) == 0

    # Remove one success outcome: a resubmit re-dispatches exactly that shard (202).
    outcome = next(
        k
        for k in helpers.list_keys(s3, stack.bucket)
        if "dataset=shard_outcomes" in k and "status=success/shard_id=2/" in k
    )
    s3.delete_object(Bucket=stack.bucket, Key=outcome)
    status, resumed = _call(app, helpers, "POST", "/sweep-run", text)
    assert status == 202 and resumed["dispatched_shards"] == [2]
    messages = sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    assert [ShardMessage.from_json(m["Body"]).shard_id for m in messages] == [2]


def _fail_entries(client: Any, *, times: int, per_call: int = 1) -> list[str]:
    """Make SQS report entries as Failed: the entry never reaches SQS and the response
    lists it under Failed (an internal error, not the sender's fault)."""
    dropped: list[str] = []
    state = {"left": times}

    def drop(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        entries = params["Entries"]
        if state["left"] <= 0 or len(entries) <= per_call:
            return
        state["left"] -= 1
        context["dropped"] = [e["Id"] for e in entries[-per_call:]]
        params["Entries"] = entries[:-per_call]
        dropped.extend(context["dropped"])

    def report(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        for entry_id in context.get("dropped", []):
            parsed.setdefault("Failed", []).append(
                {
                    "Id": entry_id,
                    "SenderFault": False,
                    "Code": "InternalError",
                    "Message": "injected",
                }
            )

    client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", drop)
    client.meta.events.register("after-call.sqs.SendMessageBatch", report)
    return dropped


@dataclass
class Faulty:
    """A stack and an app whose SQS client is its own, for hooks that inject faults."""

    stack: Any
    client: Any
    app: SweepApp

    def on_send(self, hook: Callable[..., None]) -> None:
        self.client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", hook)


@pytest.fixture
def faulty(helpers: Any, s3: Any, sqs: Any, make_client: Any) -> Faulty:
    stack = helpers.create_stack(s3, sqs)
    client = make_client("sqs")
    return Faulty(stack, client, build_app(stack.env(), s3=s3, sqs=client))


def _many_shards(run_id: str, shards: int) -> dict[str, Any]:
    return {
        **SMALL,
        "run_id": run_id,
        "dimensions": {"num_drivers": list(range(1, shards + 1))},
        "shard_count": shards,
    }


def _queued_shards(sqs: Any, queue_url: str) -> list[int]:
    seen: list[int] = []
    while got := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30
    ).get("Messages", []):
        seen.extend(ShardMessage.from_json(m["Body"]).shard_id for m in got)
    return sorted(seen)


def _reject_shard_2(calls: list[int]) -> Callable[..., None]:
    def bad_delay(params: dict[str, Any], **_: Any) -> None:
        # moto itself rejects this entry (DelaySeconds > 900) and lists it under Failed
        # with SenderFault=true: resending cannot help, so the queue adapter gives up.
        calls.append(len(params["Entries"]))
        for entry in params["Entries"]:
            if entry["Id"] == "2":
                entry["DelaySeconds"] = 901

    return bad_delay


def test_send_message_batch_failed_entries_are_resent(
    faulty: Faulty, helpers: Any, sqs: Any
) -> None:
    dropped = _fail_entries(faulty.client, times=2)
    request = _many_shards("api-partial", 12)
    status, body = _call(faulty.app, helpers, "POST", "/sweep-run", json.dumps(request))
    assert status == 202, body
    assert len(dropped) == 2  # two entries were reported Failed, then resent
    # Every shard exactly once.
    assert _queued_shards(sqs, faulty.stack.queue_url) == list(range(12))


def test_send_message_batch_sender_fault_is_503_then_resumable(
    faulty: Faulty, helpers: Any, s3: Any, sqs: Any
) -> None:
    calls: list[int] = []
    faulty.on_send(_reject_shard_2(calls))
    status, body = _call(faulty.app, helpers, "POST", "/sweep-run", json.dumps(SMALL))
    assert status == 503 and body["retryable"] and body["undispatched_shards"] == [2], body
    assert (body["error"], body["problems"]) == ("dispatch_failed", [])
    assert "InvalidParameterValue" in body["message"]
    assert calls == [3]
    assert helpers.queue_depth(sqs, faulty.stack.queue_url) == 2
    # The manifest exists; an identical resubmit (healthy client) dispatches all unfinished.
    healthy = build_app(faulty.stack.env(), s3=s3, sqs=sqs)
    status, body = _call(healthy, helpers, "POST", "/sweep-run", json.dumps(SMALL))
    assert status == 202 and body["dispatched_shards"] == [0, 1, 2] and not body["created"]


def test_an_entry_sqs_refuses_does_not_stop_the_later_batches(
    faulty: Faulty, helpers: Any, sqs: Any
) -> None:
    calls: list[int] = []
    faulty.on_send(_reject_shard_2(calls))
    request = json.dumps(_many_shards("b2", 25))
    status, body = _call(faulty.app, helpers, "POST", "/sweep-run", request)
    assert status == 503 and body["undispatched_shards"] == [2], body
    # Regression: the first batch's refusal ended the send, so shards 10-24 (two more
    # batches) were never sent and the 503 did not name them.
    assert calls == [10, 10, 5]
    assert _queued_shards(sqs, faulty.stack.queue_url) == [s for s in range(25) if s != 2]


def test_a_queue_that_refuses_the_call_lists_every_shard_not_sent(
    faulty: Faulty, helpers: Any, s3: Any, sqs: Any
) -> None:
    gone = sqs.create_queue(QueueName=f"{faulty.stack.bucket}-gone")["QueueUrl"]
    sqs.delete_queue(QueueUrl=gone)
    calls: list[str] = []

    def deleted_after_the_first_call(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["QueueUrl"])
        if len(calls) > 1:  # the queue is deleted between the first and second batch
            params["QueueUrl"] = gone

    faulty.on_send(deleted_after_the_first_call)
    request = json.dumps(_many_shards("q1", 25))
    status, body = _call(faulty.app, helpers, "POST", "/sweep-run", request)
    # Regression: a 500 (the ClientError escaped) that named no shard at all.
    assert status == 503, body
    assert (body["error"], body["retryable"]) == ("dispatch_failed", True)
    assert body["undispatched_shards"] == list(range(10, 25))
    assert "NonExistentQueue" in body["message"] or "QueueDoesNotExist" in body["message"]
    assert len(calls) == 2  # the third batch is not tried against a queue that is gone
    assert _queued_shards(sqs, faulty.stack.queue_url) == list(range(10))
    # The run is recorded: with the queue back, an identical resubmit dispatches the rest.
    healthy = build_app(faulty.stack.env(), s3=s3, sqs=sqs)
    status, body = _call(healthy, helpers, "POST", "/sweep-run", request)
    assert status == 202 and body["dispatched_shards"] == list(range(25))


@pytest.mark.parametrize(
    ("headers", "domain", "expected"),
    [
        # API Gateway sets domainName and serves HTTPS only; headers are the client's.
        (
            {"x-forwarded-proto": "javascript", "host": "evil.example"},
            "abc123.execute-api.us-east-1.amazonaws.com",
            "https://abc123.execute-api.us-east-1.amazonaws.com/sweep-run/api-small",
        ),
        (
            {"x-forwarded-proto": "http"},
            "api.example.org",
            "https://api.example.org/sweep-run/api-small",
        ),
        # Not a host name: never the authority of a URL.
        ({}, "evil.example/x?", "/sweep-run/api-small"),
        ({}, "javascript:alert(1)//", "/sweep-run/api-small"),
        ({}, "", "/sweep-run/api-small"),
    ],
)
def test_status_url_comes_from_api_gateways_domain_name_only(
    helpers: Any, s3: Any, sqs: Any, headers: dict[str, str], domain: str, expected: str
) -> None:
    stack = helpers.create_stack(s3, sqs)
    app = build_app(stack.env(), s3=s3, sqs=sqs)
    event = helpers.api_event("POST", "/sweep-run", json.dumps(SMALL), headers)
    event["requestContext"]["domainName"] = domain
    response = app.handle(event, helpers.LambdaContext())
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["status_url"] == expected
