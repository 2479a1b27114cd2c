"""In-memory fakes of every port; used by tests and by the CLI to collect messages."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from sim_serverless_sweep.core.messages import ShardMessage


class MemoryStore:
    """ObjectStore in a dict; thread-safe."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self.objects[key] = bytes(data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self.objects:
                return False
            self.objects[key] = bytes(data)
            return True

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self.objects.get(key)

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self.objects

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    def list_keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            keys = sorted(k for k in self.objects if k.startswith(prefix))
        yield from keys


class MemoryQueue:
    """ShardQueue that keeps what was sent, in order."""

    def __init__(self) -> None:
        self.messages: list[ShardMessage] = []

    def send(self, messages: Sequence[ShardMessage]) -> None:
        self.messages.extend(messages)
