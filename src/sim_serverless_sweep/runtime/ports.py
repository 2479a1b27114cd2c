"""Ports: the small interfaces the use cases need from the outside world.

Adapters: filesystem and in-memory (``local``), S3 and SQS (``aws``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from sim_serverless_sweep.core.messages import ShardMessage


class ObjectStore(Protocol):
    """Key -> bytes storage with overwrite and conditional create."""

    def put(self, key: str, data: bytes) -> None:
        """Write (or overwrite) an object."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create an object only if the key is free; False if it already existed."""

    def get(self, key: str) -> bytes | None:
        """Object bytes, or None if the key does not exist."""

    def exists(self, key: str) -> bool:
        """Whether the key exists."""

    def delete(self, key: str) -> None:
        """Remove an object; a missing key is not an error."""

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key that starts with ``prefix``, in lexical order."""


class QueueSendError(RuntimeError):
    """Some shard messages could not be enqueued; ``shard_ids`` says which."""

    def __init__(self, shard_ids: list[int], reasons: list[str]) -> None:
        self.shard_ids = shard_ids
        super().__init__(
            f"could not enqueue shard(s) {shard_ids}: {'; '.join(sorted(set(reasons)))}"
        )


class ShardQueue(Protocol):
    """Where shard work goes; every message is delivered at least once."""

    def send(self, messages: Sequence[ShardMessage]) -> None:
        """Enqueue messages; QueueSendError names the shards that could not be enqueued."""
