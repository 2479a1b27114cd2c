"""Runtime configuration from the Lambda environment (the spec's variables).

Read once at cold start; a missing or malformed variable fails there with a
message naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sim_serverless_sweep.core.contract import ConfigError, Limits
from sim_serverless_sweep.core.keys import KeyLayoutError, check_prefix

SHARD_QUEUE_URL = "SHARD_QUEUE_URL"
SWEEP_RESULTS_BUCKET = "SWEEP_RESULTS_BUCKET"
SWEEP_RESULTS_PREFIX = "SWEEP_RESULTS_PREFIX"
MAX_SHARDS = "MAX_SHARDS"
MAX_RECEIVE_COUNT = "MAX_RECEIVE_COUNT"
# ARN of the shard queue's dead-letter queue. The handler consumes it as a second
# event source and must tell its records apart from the main queue's by ARN.
SHARD_DLQ_ARN = "SHARD_DLQ_ARN"

# Every variable the runtime reads; Terraform must set exactly these (checked in tests).
ENV_VARS: tuple[str, ...] = (
    SHARD_QUEUE_URL,
    SWEEP_RESULTS_BUCKET,
    SWEEP_RESULTS_PREFIX,
    MAX_SHARDS,
    MAX_RECEIVE_COUNT,
    SHARD_DLQ_ARN,
)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    queue_url: str
    bucket: str
    prefix: str
    limits: Limits
    max_receive_count: int
    dlq_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RuntimeConfig:
        """Parse and check every variable; ConfigError names the first bad one."""
        problems: list[str] = []
        for name in (
            SHARD_QUEUE_URL,
            SWEEP_RESULTS_BUCKET,
            MAX_SHARDS,
            MAX_RECEIVE_COUNT,
            SHARD_DLQ_ARN,
        ):
            if not environ.get(name):
                problems.append(f"{name}: required environment variable is missing or empty")
        if problems:
            raise ConfigError("; ".join(problems))
        try:
            prefix = check_prefix(environ.get(SWEEP_RESULTS_PREFIX, ""))
        except KeyLayoutError as exc:
            raise ConfigError(f"{SWEEP_RESULTS_PREFIX}: {exc}") from None
        receive = environ[MAX_RECEIVE_COUNT]
        if not (receive.isascii() and receive.isdigit()) or int(receive) < 1:
            raise ConfigError(f"{MAX_RECEIVE_COUNT}: {receive!r} is not a positive integer")
        dlq_arn = environ[SHARD_DLQ_ARN]
        if not dlq_arn.startswith("arn:") or dlq_arn.count(":") != 5:
            raise ConfigError(
                f"{SHARD_DLQ_ARN}: {dlq_arn!r} is not an SQS queue ARN "
                "(arn:aws:sqs:REGION:ACCOUNT:NAME)"
            )
        queue_url = environ[SHARD_QUEUE_URL]
        if not queue_url.startswith(("https://", "http://")) or not queue_name_of_url(queue_url):
            raise ConfigError(
                f"{SHARD_QUEUE_URL}: {queue_url!r} is not an SQS queue URL "
                "(https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
            )
        return cls(
            queue_url=environ[SHARD_QUEUE_URL],
            bucket=environ[SWEEP_RESULTS_BUCKET],
            prefix=prefix,
            limits=Limits.from_env(environ),
            max_receive_count=int(receive),
            dlq_arn=dlq_arn,
        )

    @property
    def queue_name(self) -> str:
        """Name of the shard queue (last segment of its URL)."""
        return queue_name_of_url(self.queue_url)


def queue_name_of_url(url: str) -> str:
    """Queue name from a queue URL.

    >>> queue_name_of_url("https://sqs.us-east-1.amazonaws.com/123456789012/shards")
    'shards'
    """
    parts = url.rstrip("/").split("/")
    return parts[-1] if len(parts) >= 5 else ""
