"""ObjectStore over one S3 bucket (the client is injected)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3 answers 409 ConditionalRequestConflict when two conditional writes to one key race;
# its documentation says to retry. botocore does not treat 409 as retryable.
CONDITIONAL_CONFLICT_TRIES = 3


class S3Store:
    """ObjectStore on S3: put/get/head/delete/list; conditional create via If-None-Match.

    >>> # S3Store(boto3.client("s3"), "my-bucket").put("k", b"v")
    """

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        for attempt in range(1, CONDITIONAL_CONFLICT_TRIES + 1):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                status = _status(exc)
                if status == 412:  # PreconditionFailed: the key already exists
                    return False
                if status == 409 and attempt < CONDITIONAL_CONFLICT_TRIES:
                    continue  # a racing conditional write; the retry sees 412 or wins
                raise
            return True
        raise AssertionError("unreachable: the loop returns or raises")

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404") or self._missing_behind_403(exc, key):
                return None
            raise
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404 or self._missing_behind_403(exc, key):
                return False
            raise
        return True

    def _missing_behind_403(self, exc: ClientError, key: str) -> bool:
        # S3 answers 403 instead of 404 for a missing key unless the caller may list the
        # bucket; the role's ListBucket is scoped to the prefix, which a GET/HEAD does not
        # carry. A prefix listing (allowed) tells "missing" from "really forbidden".
        if _status(exc) != 403:
            return False
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return not any(item["Key"] == key for item in listing.get("Contents", []))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def list_keys(self, prefix: str) -> Iterator[str]:
        # ListObjectsV2 returns keys in UTF-8 binary order, which is str order for our keys.
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]


def _status(exc: ClientError) -> int | None:
    status: int | None = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
