"""ShardQueue over SQS: SendMessageBatch in chunks, resending entries SQS reports as Failed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.runtime.ports import QueueSendError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_BATCH_ENTRIES = 10  # SQS limit per SendMessageBatch
# SQS's per-call payload limit is 1 MiB now; 256 KiB (the older limit) is safe everywhere
# and never binds for our O(1)-size messages anyway.
MAX_BATCH_BYTES = 256 * 1024
# Rounds of resending Failed entries (on top of botocore's own retries of the call).
MAX_SEND_ROUNDS = 4


class SqsShardQueue:
    """Send shard messages to one SQS queue; raise QueueSendError if any are left over.

    Every chunk is tried even when an earlier one left entries unsent (an entry SQS
    refuses says nothing about the others), except after SQS refused a call itself (the
    queue is gone, access denied, botocore's retries ran out): later calls would meet the
    same answer, each after its own retries. Either way the error lists every shard not
    sent, the untried chunks included.
    """

    def __init__(
        self, client: SQSClient, queue_url: str, max_rounds: int = MAX_SEND_ROUNDS
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.max_rounds = max_rounds

    def send(self, messages: Sequence[ShardMessage]) -> None:
        bodies = {m.shard_id: m.to_json() for m in messages}
        if len(bodies) != len(messages):
            raise ValueError("send: shard ids must be unique within one call")
        unsent: list[int] = []
        reasons: list[str] = []
        chunks = list(_chunks(list(bodies.items())))
        for index, chunk in enumerate(chunks):
            left, why, refused = self._send_chunk(chunk)
            unsent += left
            reasons += why
            if refused:
                unsent += [shard_id for later in chunks[index + 1 :] for shard_id, _ in later]
                break
        if unsent:
            raise QueueSendError(sorted(unsent), reasons)

    def _send_chunk(self, chunk: list[tuple[int, str]]) -> tuple[list[int], list[str], bool]:
        """The chunk's shards left unsent, why, and whether SQS refused the call itself."""
        from botocore.exceptions import BotoCoreError, ClientError

        pending = dict(chunk)
        reasons: list[str] = []
        for _ in range(self.max_rounds):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(shard_id), "MessageBody": body} for shard_id, body in pending.items()
            ]
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                reason = f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
                return sorted(pending), [reason], True
            except BotoCoreError as exc:  # e.g. no connection after botocore's retries
                return sorted(pending), [f"{type(exc).__name__}: {exc}"], True
            for ok in response.get("Successful", []):
                pending.pop(int(ok["Id"]), None)
            failed = response.get("Failed", [])
            reasons = [f"{f.get('Code', '?')}: {f.get('Message', '')}".rstrip(": ") for f in failed]
            if not pending:
                return [], [], False
            if any(f.get("SenderFault") for f in failed):
                break  # the request itself is wrong: resending cannot help
        return sorted(pending), reasons or ["no result reported for these entries"], False


def _chunks(items: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    size = 0
    for shard_id, body in items:
        length = len(body.encode())
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or size + length > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append((shard_id, body))
        size += length
    if chunk:
        yield chunk
