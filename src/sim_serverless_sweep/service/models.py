"""Response bodies of the HTTP API.

The app builds every body through these models and the OpenAPI document is generated
from them, so the two cannot drift: a body that does not fit its model is a 500.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from http import HTTPStatus
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from sim_serverless_sweep.core.contract import FieldProblem

# Serialization-mode schemas mark defaulted fields required: every body carries them.
_CONFIG = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

# The `error` code of each problem status; one code per status, documented as a const.
# The one exception: a 503 is `dispatch_failed` (the queue) or `storage_unavailable`
# (the results store); both are their own models below.
ERROR_CODES: dict[HTTPStatus, str] = {
    HTTPStatus.BAD_REQUEST: "invalid_request",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.CONFLICT: "run_conflict",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    HTTPStatus.INTERNAL_SERVER_ERROR: "internal_error",
    HTTPStatus.SERVICE_UNAVAILABLE: "dispatch_failed",
    # Only from `sweep serve`'s HTTP layer (API Gateway answers these itself).
    HTTPStatus.LENGTH_REQUIRED: "length_required",
    HTTPStatus.REQUEST_URI_TOO_LONG: "uri_too_long",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "header_fields_too_large",
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: "http_version_not_supported",
}


class ProblemItem(BaseModel):
    """One violation, named by field: the same text the CLI prints."""

    model_config = _CONFIG

    field: str = Field(description="Where: a request field path, `request`, `content-type`, ...")
    value: JsonValue = Field(description="The offending value (null when absent).")
    rule: str = Field(description="The rule it breaks.")
    message: str = Field(description="`field: value — rule` as one line.")

    @classmethod
    def of(cls, problem: FieldProblem) -> ProblemItem:
        return cls.model_validate(problem.to_dict())


class Problem(BaseModel):
    """Every error body: a code, a one-line message and the field-named problems."""

    model_config = _CONFIG

    error: str = Field(description="Machine-readable code; one per HTTP status.")
    message: str
    problems: list[ProblemItem] = Field(
        description="Field-named problems of the request; empty when the failure is not the "
        "request's fault (503, 500)."
    )


class DispatchFailed(Problem):
    """503: the run is recorded but some shard messages could not be enqueued."""

    error: Literal["dispatch_failed"] = "dispatch_failed"
    retryable: Literal[True] = True
    undispatched_shards: list[int] = Field(
        description="Every shard of this request that was not enqueued (sent to no queue)."
    )


class StorageUnavailable(Problem):
    """503: the results storage failed (read-only, full, no permission); no server paths."""

    error: Literal["storage_unavailable"] = "storage_unavailable"
    retryable: Literal[True] = True


class InternalError(Problem):
    """500: anything unexpected; logged with its stack trace. The message names only the
    error's type and the request id (never the error's text, which may hold paths)."""

    error: Literal["internal_error"] = "internal_error"
    retryable: Literal[False] = False


def problem(
    status: HTTPStatus, problems: Sequence[FieldProblem], message: str | None = None
) -> Problem:
    """The problem body for ``status``; the message defaults to the problems' one-liners."""
    return Problem(
        error=ERROR_CODES[status],
        message=message or "; ".join(p.message() for p in problems),
        problems=[ProblemItem.of(p) for p in problems],
    )


class RunAccepted(BaseModel):
    """202 (shards dispatched) or 200 (identical resubmit, nothing left to run)."""

    model_config = _CONFIG

    run_id: str
    run_date: dt.date = Field(description="UTC date the run was first accepted.")
    points: int = Field(ge=1, description="Grid points (replications not counted).")
    shard_count: int = Field(ge=1)
    created: bool = Field(description="False for a resubmit of an existing run.")
    dispatched_shards: list[int] = Field(
        description="Shards without a success outcome, now on their way: enqueued by this "
        "request, or (`sweep serve`) already queued or running from an earlier request, "
        "which are not queued twice."
    )
    already_succeeded_shards: list[int] = Field(
        description="Shards with a success outcome already (not enqueued again)."
    )
    status_url: str = Field(description="GET this for the run's status.")


class RunnerBody(BaseModel):
    """The local runner's lease: who runs the run and whether it is still alive."""

    model_config = _CONFIG

    host: str
    pid: int
    command: str
    started_at: str
    heartbeat_at: str
    state: Literal["running", "interrupted", "finished"]
    live: bool = Field(description="state is running and the heartbeat is recent.")


class RunStatusBody(BaseModel):
    """GET /sweep-run/{run_id}: progress from the manifest and the shard outcomes."""

    model_config = _CONFIG

    run_id: str
    run_date: dt.date
    points: int = Field(ge=1)
    shard_count: int = Field(ge=1)
    state: Literal["running", "interrupted", "succeeded", "failed"] = Field(
        description="running while any shard is pending (interrupted if the local runner "
        "that had them stopped or died); then failed if any shard failed."
    )
    runner: RunnerBody | None = Field(
        default=None,
        description="The lease of the local runner (`sweep run`) that worked on the run; "
        "absent for runs the cloud queue ran.",
    )
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    pending: int = Field(ge=0)
    succeeded_shards: list[int]
    failed_shards: list[int]
    pending_shards: list[int]
