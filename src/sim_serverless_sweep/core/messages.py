"""Shard messages and run manifests: what travels on the queue and what a run records."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from sim_serverless_sweep.core.contract import SweepRequest
from sim_serverless_sweep.core.sharding import Plan


class ShardMessage(BaseModel):
    """One shard of work. O(dimensions) in size: an index range, not a point list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    run_date: dt.date
    shard_id: int
    first_point_index: int
    stop_point_index: int
    request: SweepRequest

    @classmethod
    def for_shard(cls, request: SweepRequest, run_date: dt.date, plan: Plan, shard_id: int) -> Self:
        span = plan.shard_range(shard_id)
        return cls(
            run_id=request.run_id,
            run_date=run_date,
            shard_id=shard_id,
            first_point_index=span.start,
            stop_point_index=span.stop,
            request=request,
        )

    @property
    def point_range(self) -> range:
        return range(self.first_point_index, self.stop_point_index)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, body: str | bytes) -> Self:
        return cls.model_validate_json(body)


class RunManifest(BaseModel):
    """Recorded once when a run is accepted; fixes run_date and the plan for every shard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    run_date: dt.date
    accepted_at: dt.datetime
    request: SweepRequest
    request_sha256: str
    points: int
    shard_count: int
    code_version: str

    @classmethod
    def create(cls, request: SweepRequest, now: dt.datetime, code_version: str) -> Self:
        plan = Plan.from_request(request)
        now_utc = now.astimezone(dt.UTC)
        return cls(
            run_id=request.run_id,
            run_date=now_utc.date(),
            accepted_at=now_utc,
            request=request,
            request_sha256=request_digest(request),
            points=plan.points,
            shard_count=plan.shard_count,
            code_version=code_version,
        )

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls.model_validate_json(data)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_date": self.run_date.isoformat(),
            "points": self.points,
            "shard_count": self.shard_count,
        }


def request_digest(request: SweepRequest) -> str:
    """SHA-256 of the canonical request: equal requests, equal digests."""
    return hashlib.sha256(request.canonical_json().encode()).hexdigest()
