"""Deterministic interleavings of one shard's success path and failure path over a real store.

Both paths run in threads over :class:`GatedStore` wrappers of one store; a
:class:`Turns` lets exactly one store operation happen at a time, in an order a
schedule fixes: ``(first, [a1, b1, a2, ...])`` lets ``first`` do a1 operations, the
other path b1, ``first`` a2, ... and then each path in turn runs to its end. Nothing
else is replaced: the paths are ``deliver`` and ``record_failure`` themselves.

Loaded by path (tests use importlib mode): tests/runtime and tests/aws share it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.keys import DATA_DATASETS, manifest_key, outcome_key
from sim_serverless_sweep.core.messages import RunManifest, ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.local.memory import MemoryStore
from sim_serverless_sweep.runtime.ports import ObjectStore
from sim_serverless_sweep.runtime.shard import (
    DataFile,
    deliver,
    expected_keys,
    record_failure,
    recorded_files,
)

T = TypeVar("T")
PATHS = ("success", "failure")
PREFIX = "sweeps"
ACCEPTED = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
# One point, so a run is cheap; three data files still give the deletes a gap to race in.
BODY = {
    "run_id": "races",
    "seed": 5,
    "shard_count": 2,
    "dimensions": {"horizon_min": [30], "warmup_min": [0], "num_drivers": [5, 6]},
}
JOIN_TIMEOUT_S = 60.0


def manifest() -> RunManifest:
    return RunManifest.create(parse_request(json.dumps(BODY)), ACCEPTED, "test")


def message(shard_id: int = 0) -> ShardMessage:
    run = manifest()
    plan = Plan.from_request(run.request)
    return ShardMessage.for_shard(run.request, run.run_date, plan, shard_id)


def submit_manifest(store: ObjectStore) -> None:
    store.put(manifest_key(PREFIX, manifest().run_id), manifest().to_bytes())


def clean_data() -> dict[str, bytes]:
    """The shard's data files from an undisturbed success."""
    store = MemoryStore()
    submit_manifest(store)
    assert deliver(message(), store, PREFIX, 1, 3).error is None
    return {
        k: v for k, v in store.objects.items() if any(f"/dataset={d}/" in k for d in DATA_DATASETS)
    }


class Deadlock(AssertionError):
    pass


@dataclass
class Turns:
    """Grants store operations one at a time following a schedule (see the module doc)."""

    first: str
    runs: list[int]
    trace: list[tuple[str, str, str]] = field(default_factory=list)
    _holder: str = ""
    _budget: float = 0.0
    _done: set[str] = field(default_factory=set)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self._holder = self.first
        self._budget = self.runs.pop(0) if self.runs else float("inf")
        self._skip_empty_runs()

    def _other(self, name: str) -> str:
        return PATHS[1 - PATHS.index(name)]

    def _skip_empty_runs(self) -> None:
        while self._budget <= 0:
            self._holder = self._other(self._holder)
            self._budget = self.runs.pop(0) if self.runs else float("inf")

    def _switch(self) -> None:
        self._holder = self._other(self._holder)
        self._budget = self.runs.pop(0) if self.runs else float("inf")
        self._skip_empty_runs()

    def operate(self, name: str, op: str, key: str, call: Callable[[], T]) -> T:
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._holder == name or self._other(name) in self._done,
                timeout=JOIN_TIMEOUT_S,
            ):
                raise Deadlock(f"{name} waited for its turn for {JOIN_TIMEOUT_S} s")
        result = call()  # only the holder gets here, so operations never overlap
        with self._cond:
            self.trace.append((name, op, key.split("dataset=")[-1]))
            if self._holder == name:
                self._budget -= 1
                if self._budget <= 0 and self._other(name) not in self._done:
                    self._switch()
            self._cond.notify_all()
        return result

    def finish(self, name: str) -> None:
        with self._cond:
            self._done.add(name)
            if self._holder == name:
                self._holder = self._other(name)
                self._budget = float("inf")
            self._cond.notify_all()


class GatedStore:
    """An ObjectStore whose every operation waits for its path's turn, then runs on ``inner``."""

    def __init__(self, inner: ObjectStore, turns: Turns, name: str) -> None:
        self.inner, self.turns, self.name = inner, turns, name

    def put(self, key: str, data: bytes) -> None:
        self.turns.operate(self.name, "put", key, lambda: self.inner.put(key, data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.turns.operate(
            self.name, "put_if_absent", key, lambda: self.inner.put_if_absent(key, data)
        )

    def get(self, key: str) -> bytes | None:
        return self.turns.operate(self.name, "get", key, lambda: self.inner.get(key))

    def exists(self, key: str) -> bool:
        return self.turns.operate(self.name, "exists", key, lambda: self.inner.exists(key))

    def delete(self, key: str) -> None:
        self.turns.operate(self.name, "delete", key, lambda: self.inner.delete(key))

    def list_keys(self, prefix: str) -> Iterator[str]:
        keys = self.turns.operate(
            self.name, "list", prefix, lambda: list(self.inner.list_keys(prefix))
        )
        return iter(keys)


def interleave(store: ObjectStore, first: str, runs: Sequence[int]) -> Turns:
    """Run one success path (deliver) and one failure path (record_failure) concurrently."""
    turns = Turns(first, list(runs))
    paths: dict[str, Callable[[ObjectStore], Any]] = {
        "success": lambda s: deliver(message(), s, PREFIX, 1, 3),
        "failure": lambda s: record_failure(message(), s, PREFIX, 3, RuntimeError("dead")),
    }
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            paths[name](GatedStore(store, turns, name))
        except BaseException as exc:  # surfaced below with the schedule
            errors.append(exc)
        finally:
            turns.finish(name)

    threads = [threading.Thread(target=run, args=(name,), daemon=True) for name in PATHS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
        if thread.is_alive():
            raise Deadlock(f"{first} {list(runs)}: a path did not finish: {turns.trace}")
    if errors:
        raise AssertionError(f"{first} {list(runs)}: {errors!r}; trace {turns.trace}")
    return turns


def settled_state(store: ObjectStore, reference: dict[str, bytes], where: str) -> str:
    """'success' or 'failure' if the shard is consistent; AssertionError otherwise."""
    shard = message()
    success = store.get(outcome_key(PREFIX, shard.run_date, shard.run_id, "success", 0))
    failure = store.exists(outcome_key(PREFIX, shard.run_date, shard.run_id, "failure", 0))
    data = {
        key: store.get(key)
        for dataset in DATA_DATASETS
        for key in store.list_keys(f"{PREFIX}/dataset={dataset}/")
    }
    if success is not None and not failure and data == reference:
        files = recorded_files(success)
        assert files == sorted(
            (DataFile.of(k, v) for k, v in reference.items()), key=lambda f: f.key
        ), where
        assert sorted(reference) == sorted(expected_keys(shard, PREFIX)), where
        return "success"
    if success is None and failure and not data:
        return "failure"
    raise AssertionError(
        f"{where}: inconsistent shard: success={success is not None} failure={failure} "
        f"data files={sorted(k.rsplit('/', 3)[-3] for k in data)} "
        f"(complete and intact: {data == reference})"
    )


def schedules(depth: int, longest: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Each path first, alone and then with up to ``depth`` bounded runs of 1..longest ops."""
    for first in PATHS:
        yield first, ()
        frontier: list[tuple[int, ...]] = [()]
        for _ in range(depth):
            frontier = [(*runs, n) for runs in frontier for n in range(1, longest + 1)]
            for runs in frontier:
                yield first, runs
