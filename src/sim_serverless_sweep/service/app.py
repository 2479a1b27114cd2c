"""The one event router: API Gateway HTTP API (payload 2.0) and SQS batches.

It wires ports to use cases and decides nothing itself: ``submit``, ``run_status`` and
``deliver``/``record_failure`` do the work. The Lambda entry point (``aws.handler``)
and the local HTTP server (``local.server``) both call :meth:`SweepApp.handle`, with
S3/SQS adapters and filesystem/process-pool adapters respectively. Every response body
is one of the models in ``service.models``. No boto3 here.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from pydantic import BaseModel, ValidationError

from sim_serverless_sweep.core.contract import (
    RUN_ID_PATTERN,
    FieldProblem,
    Limits,
    RequestError,
    parse_request,
)
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.runtime.ports import ObjectStore, QueueSendError, ShardQueue
from sim_serverless_sweep.runtime.shard import Delivery, deliver, record_failure
from sim_serverless_sweep.runtime.status import run_status
from sim_serverless_sweep.runtime.submit import RunConflict, submit
from sim_serverless_sweep.runtime.verify import VerifyMode
from sim_serverless_sweep.service.models import (
    DispatchFailed,
    InternalError,
    Problem,
    RunAccepted,
    RunStatusBody,
    StorageUnavailable,
    problem,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="sim-serverless-sweep")

ROUTE = "/sweep-run"
JSON = "application/json"
_RUN_ID = re.compile(RUN_ID_PATTERN)
# Content types parsed as JSON: JSON itself, and what curl -d / plain clients send by
# default (the body must still be valid JSON). Anything else is a 415.
_JSON_LIKE = ("application/json", "text/plain", "application/x-www-form-urlencoded")
RUN_ID_RULE = "must be 1-128 characters of A-Z a-z 0-9 . _ - not starting with '.' or '-'"
# A DNS host name (what API Gateway puts in requestContext.domainName): nothing else may
# become the authority of an absolute status_url.
_HOST_NAME = re.compile(
    r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
# The POST route's raw path, with an optional stage prefix (/prod/sweep-run).
_ROUTE_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)*" + re.escape(ROUTE))


def queue_name_of_arn(arn: str) -> str:
    """Queue name from a queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME).

    >>> queue_name_of_arn("arn:aws:sqs:us-east-1:123456789012:shards-dlq")
    'shards-dlq'
    """
    return arn.rsplit(":", 1)[-1]


class UnsupportedEvent(ValueError):
    """The event is neither an HTTP API payload 2.0 event nor an SQS batch."""


class UnknownEventSource(RuntimeError):
    """An SQS record from a queue that is neither the shard queue nor its DLQ."""


class ShardAttemptFailed(RuntimeError):
    """A shard delivery failed; reported as a batch item failure so SQS redelivers it."""


class DeadLettered(RuntimeError):
    """The failure recorded for a message that reached the DLQ without an outcome."""


@dataclass
class SweepApp:
    """Ports + settings, and the handler over them.

    ``queue_name``/``dlq_arn`` identify SQS event sources (None locally: no SQS events).
    ``base_url`` is where the API is served, from the server's own configuration
    (``sweep serve``: its listening address; "" for a relative ``status_url``). None (Lambda):
    ``https://`` + the event's ``requestContext.domainName``, which API Gateway sets.
    Request headers (Host, X-Forwarded-Proto) never go into a URL.
    """

    store: ObjectStore
    queue: ShardQueue
    prefix: str
    limits: Limits
    max_receive_count: int
    queue_name: str | None = None
    dlq_arn: str | None = None
    # How a resubmit checks finished shards' data before skipping them. Off by default:
    # on S3 it reads every object of the run, too slow for API Gateway's 30 s; the local
    # server checks sizes.
    resubmit_verify: VerifyMode | None = None
    base_url: str | None = None
    _resolver: APIGatewayHttpResolver = field(init=False, repr=False)
    # The resolver keeps the current event on itself; the local server is threaded.
    _api_lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._resolver = _build_resolver(self)

    def handle(self, event: Mapping[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """Route one Lambda event: SQS batch -> partial batch response, API -> HTTP response."""
        records = event.get("Records")
        if isinstance(records, list):
            if records and any(r.get("eventSource") != "aws:sqs" for r in records):
                raise UnsupportedEvent("Records event whose eventSource is not aws:sqs")
            return self._handle_sqs(dict(event), context)
        request_context = event.get("requestContext")
        if isinstance(request_context, Mapping) and "http" in request_context:
            with self._api_lock:
                try:
                    return self._resolver.resolve(dict(event), context)  # type: ignore[arg-type]
                finally:
                    logger.thread_safe_clear_keys()
        raise UnsupportedEvent(
            "event is neither an API Gateway HTTP API (payload 2.0) event nor an SQS batch"
        )

    # SQS ----------------------------------------------------------------------------------

    def _handle_sqs(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        # One processor per invocation: it holds per-batch state and is not thread-safe.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        response: dict[str, Any] = dict(
            process_partial_response(
                event=event, record_handler=self._record, processor=processor, context=context
            )
        )
        return response

    def _record(self, record: SQSRecord) -> None:
        attempt = int(record.attributes.approximate_receive_count)
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(message_id=record.message_id, attempt=attempt)
        try:
            self._record_inner(record, attempt)
        finally:
            logger.thread_safe_clear_keys()

    def _record_inner(self, record: SQSRecord, attempt: int) -> None:
        source = record.event_source_arn
        from_dlq = self.dlq_arn is not None and source == self.dlq_arn
        from_queue = self.queue_name is not None and queue_name_of_arn(source) == self.queue_name
        if not from_dlq and not from_queue:
            logger.error(
                "record from an unknown event source; left on its queue",
                extra={"event_source_arn": source},
            )
            raise UnknownEventSource(
                f"eventSourceARN {source!r} is neither the shard queue "
                f"{self.queue_name!r} nor the DLQ {self.dlq_arn!r}"
            )
        try:
            message = ShardMessage.from_json(record.body)
        except ValidationError as exc:
            logger.error(
                "message body is not a shard message",
                extra={"body_excerpt": record.body[:500], "error": str(exc)[:2000]},
            )
            if from_dlq:
                return  # already dead-lettered; redelivering it for 14 days helps nobody
            raise  # reported failed, so it ends in the DLQ
        logger.thread_safe_append_keys(run_id=message.run_id, shard_id=message.shard_id)
        if from_dlq:
            self._dead_letter(message)
            return
        result = deliver(message, self.store, self.prefix, attempt, self.max_receive_count)
        error = f"{type(result.error).__name__}: {result.error}" if result.error else None
        if result.delivery is Delivery.RETRY:
            logger.warning("shard attempt failed; SQS will redeliver", extra={"error": error})
            raise ShardAttemptFailed(error)
        if result.delivery is Delivery.FAILED:
            logger.error(
                "shard failed on its last attempt; failure recorded, message goes to the DLQ",
                extra={"error": error},
            )
            raise ShardAttemptFailed(error)
        logger.info(f"shard {result.delivery.value}", extra={"points": len(message.point_range)})

    def _dead_letter(self, message: ShardMessage) -> None:
        # Backstop for deliveries that never reached deliver's except-branch (timeout, OOM,
        # crash): the failure is recorded here unless a success or failure already exists.
        # attempts = maxReceiveCount: the DLQ's own receive count keeps counting on from the
        # shard queue's, so it says nothing about how often the shard actually ran.
        error = DeadLettered(
            f"message reached the dead-letter queue after {self.max_receive_count} deliveries "
            "without a recorded outcome (timeout, out of memory or crash)"
        )
        recorded = record_failure(message, self.store, self.prefix, self.max_receive_count, error)
        logger.warning(
            "dead-lettered shard: "
            + ("failure recorded" if recorded else "outcome already recorded; nothing to do")
        )

    # API ----------------------------------------------------------------------------------

    def post_sweep_run(self, resolver: APIGatewayHttpResolver) -> Response[str]:
        event = resolver.current_event
        headers = {k.lower(): v for k, v in (event.headers or {}).items()}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in _JSON_LIKE and not content_type.endswith("+json"):
            return _problem(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                [FieldProblem("content-type", content_type, "must be application/json")],
            )
        body = _raw_body(event.raw_event)
        if len(body) > self.limits.max_body_bytes:
            return _problem(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                [
                    FieldProblem(
                        "request",
                        len(body),
                        f"body is {len(body)} bytes; the limit is "
                        f"{self.limits.max_body_bytes} bytes",
                    )
                ],
            )
        request = parse_request(body, self.limits)
        logger.thread_safe_append_keys(run_id=request.run_id)
        submission = submit(
            request, self.store, self.queue, self.prefix, verify=self.resubmit_verify
        )
        manifest = submission.manifest
        logger.info(
            "run accepted" if submission.created else "run resubmitted",
            extra={
                "dispatched": len(submission.dispatched),
                "already_succeeded": len(submission.already_succeeded),
            },
        )
        payload = RunAccepted.model_validate(
            {
                **manifest.summary(),
                "created": submission.created,
                "dispatched_shards": submission.dispatched,
                "already_succeeded_shards": submission.already_succeeded,
                "status_url": self.status_url(event.raw_event, manifest.run_id),
            }
        )
        # 202: work is queued; 200: an identical resubmit with nothing left to do.
        status = HTTPStatus.ACCEPTED if submission.dispatched else HTTPStatus.OK
        return _json(status, payload)

    def status_url(self, event: Mapping[str, Any], run_id: str) -> str:
        """Where to GET the run's status: an absolute URL only from trusted data."""
        raw_path = str(event.get("rawPath") or "")
        path = (raw_path if _ROUTE_PATH.fullmatch(raw_path) else ROUTE) + "/" + run_id
        if self.base_url is not None:
            return self.base_url + path
        domain = (event.get("requestContext") or {}).get("domainName")
        if isinstance(domain, str) and _HOST_NAME.fullmatch(domain):
            return f"https://{domain}{path}"  # API Gateway serves HTTPS only
        return path

    def get_sweep_run(self, run_id: str) -> Response[str]:
        logger.thread_safe_append_keys(run_id=run_id)
        if not _RUN_ID.fullmatch(run_id):  # fullmatch: `$` alone would allow a trailing \n
            return _json(
                HTTPStatus.BAD_REQUEST,
                _invalid(RequestError([FieldProblem("run_id", run_id, RUN_ID_RULE)])),
            )
        status = run_status(self.store, self.prefix, run_id)
        if status is None:
            return _problem(
                HTTPStatus.NOT_FOUND, [FieldProblem("run_id", run_id, "no run has this run_id")]
            )
        return _json(HTTPStatus.OK, RunStatusBody.model_validate(status.to_dict()))


def _build_resolver(app: SweepApp) -> APIGatewayHttpResolver:
    resolver = APIGatewayHttpResolver()

    @resolver.post(ROUTE)
    def _post() -> Response[str]:
        return app.post_sweep_run(resolver)

    @resolver.get(ROUTE + "/<run_id>")
    def _get(run_id: str) -> Response[str]:
        return app.get_sweep_run(run_id)

    def _bad_request(exc: RequestError) -> Response[str]:
        logger.info("request rejected", extra={"problems": [p.message() for p in exc.problems]})
        return _json(HTTPStatus.BAD_REQUEST, _invalid(exc))

    def _conflict(exc: RunConflict) -> Response[str]:
        return _problem(HTTPStatus.CONFLICT, [FieldProblem("run_id", exc.run_id, exc.rule)])

    def _dispatch_failed(exc: QueueSendError) -> Response[str]:
        # The manifest exists, so an identical resubmit re-dispatches what is missing.
        logger.exception("dispatch failed")
        body = DispatchFailed(
            message=f"{exc}; the run is recorded: resubmit the identical request to "
            "dispatch the missing shards",
            problems=[],
            undispatched_shards=exc.shard_ids,
        )
        return _json(HTTPStatus.SERVICE_UNAVAILABLE, body)

    def _storage(exc: OSError) -> Response[str]:
        # The store's own I/O failed (read-only folder, full disk, permissions). The full
        # error, paths included, goes to the log; the client gets the condition only.
        request_id = _request_id(resolver)
        logger.exception("results storage failed", extra={"request_id": request_id})
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        body = StorageUnavailable(
            message=f"the results storage failed ({reason}); nothing was dispatched. Free "
            "space or make the results location writable, then retry: an identical resubmit "
            f"resumes the run (request id {request_id})",
            problems=[],
        )
        return _json(HTTPStatus.SERVICE_UNAVAILABLE, body)

    def _internal(exc: Exception) -> Response[str]:
        # str(exc) may hold paths, keys or data: only its type leaves the server.
        request_id = _request_id(resolver)
        logger.exception("request failed", extra={"request_id": request_id})
        body = InternalError(
            message=f"internal error ({type(exc).__name__}); the server's log has the "
            f"details (request id {request_id})",
            problems=[],
        )
        return _json(HTTPStatus.INTERNAL_SERVER_ERROR, body)

    # Registered by call, not decorator: Powertools' exception_handler is untyped.
    resolver.exception_handler(RequestError)(_bad_request)
    resolver.exception_handler(RunConflict)(_conflict)
    resolver.exception_handler(QueueSendError)(_dispatch_failed)
    resolver.exception_handler(OSError)(_storage)
    resolver.exception_handler(Exception)(_internal)

    @resolver.not_found
    def _not_found(_exc: Exception) -> Response[str]:
        event = resolver.current_event
        path, method = event.path, event.http_method
        segment = path.removeprefix(ROUTE + "/") if path.startswith(ROUTE + "/") else ""
        allowed = "POST" if path == ROUTE else "GET" if segment and "/" not in segment else None
        if allowed == method == "GET":
            # A run_id with characters the route pattern does not match: a bad run_id (400),
            # not a missing route.
            return app.get_sweep_run(segment)
        if allowed is not None and method != allowed:
            response = _problem(
                HTTPStatus.METHOD_NOT_ALLOWED,
                [FieldProblem("method", method, f"not allowed on {path}; use {allowed}")],
            )
            response.headers["Allow"] = allowed
            return response
        return _problem(
            HTTPStatus.NOT_FOUND,
            [FieldProblem("path", path, f"no such route; use POST {ROUTE} or GET {ROUTE}/RUN_ID")],
        )

    return resolver


def _invalid(exc: RequestError) -> Problem:
    return Problem.model_validate(exc.to_dict())


def _raw_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(
                [FieldProblem("request", None, "body is flagged base64 but is not valid base64")]
            ) from None
    return body.encode() if isinstance(body, str) else bytes(body)


_REQUEST_ID = re.compile(r"[A-Za-z0-9=_.-]{1,128}")


def _request_id(resolver: APIGatewayHttpResolver) -> str:
    """The request's id (API Gateway's, or the local server's) to find its log lines."""
    request_id = resolver.current_event.request_context.request_id
    return request_id if _REQUEST_ID.fullmatch(request_id or "") else "unknown"


def _json(status: HTTPStatus, body: BaseModel) -> Response[str]:
    return Response(status_code=int(status), content_type=JSON, body=body.model_dump_json())


def _problem(status: HTTPStatus, problems: list[FieldProblem]) -> Response[str]:
    return _json(status, problem(status, problems))
