"""The IAM actions the runtime needs, declared once (Terraform builds its policy from this).

Keys are resource kinds; each set is exactly what the adapters in this package and the
SQS event source mapping (which polls with the function's role) call. A test records
every AWS operation the runtime makes against moto and checks it against this table.
"""

from __future__ import annotations

from collections.abc import Mapping

RUNTIME_IAM_ACTIONS: dict[str, frozenset[str]] = {
    # SendMessageBatch is authorised by sqs:SendMessage; GetQueueAttributes is the cold-start
    # redrive check (and the mapping's); Receive/Delete are the event source mapping's.
    "shard_queue": frozenset(
        {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    ),
    # The DLQ is a second event source: the mapping receives and deletes on it.
    "dead_letter_queue": frozenset(
        {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    ),
    # Objects under arn:aws:s3:::BUCKET/PREFIX/*: HeadObject is authorised by s3:GetObject.
    "results_objects": frozenset({"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}),
    # ListObjectsV2 on the bucket (scope with an s3:prefix condition).
    "results_bucket": frozenset({"s3:ListBucket"}),
}

# API operation (as botocore names it) -> (resource kind, IAM action). Covers every call
# the runtime makes; used to check RUNTIME_IAM_ACTIONS against recorded traffic.
OPERATION_ACTIONS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "s3.PutObject": (("results_objects", "s3:PutObject"),),
    "s3.GetObject": (("results_objects", "s3:GetObject"),),
    "s3.HeadObject": (("results_objects", "s3:GetObject"),),
    "s3.DeleteObject": (("results_objects", "s3:DeleteObject"),),
    "s3.ListObjectsV2": (("results_bucket", "s3:ListBucket"),),
    "sqs.SendMessageBatch": (("shard_queue", "sqs:SendMessage"),),
    "sqs.GetQueueAttributes": (("shard_queue", "sqs:GetQueueAttributes"),),
}

# What the event source mapping itself calls on each queue it polls.
EVENT_SOURCE_MAPPING_ACTIONS: frozenset[str] = frozenset(
    {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
)
