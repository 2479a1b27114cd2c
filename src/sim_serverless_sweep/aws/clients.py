"""boto3 clients with the retry policy of the runtime (built once per Lambda environment)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

# Standard mode retries throttling (SlowDown, ThrottlingException, ...), 500/502/503/504
# and connection errors with jittered exponential backoff; adaptive adds client-side rate
# limiting but is marked experimental, so standard it is.
RETRY_MODE: Final = "standard"
MAX_ATTEMPTS: Final = 8  # total attempts including the first; keeps a call well under 30 s

CLIENT_CONFIG = Config(
    retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=5,
    read_timeout=20,
    tcp_keepalive=True,
)


def s3_client(**overrides: Any) -> S3Client:
    """S3 client with the runtime's retry policy; ``overrides`` go to boto3 (tests: endpoint)."""
    import boto3  # deferred: keeps the handler module cheap to import

    client: S3Client = boto3.client("s3", config=CLIENT_CONFIG, **overrides)
    return client


def sqs_client(**overrides: Any) -> SQSClient:
    """SQS client with the runtime's retry policy."""
    import boto3

    client: SQSClient = boto3.client("sqs", config=CLIENT_CONFIG, **overrides)
    return client
