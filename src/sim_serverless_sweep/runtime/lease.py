"""The runner lease: which process is running a run's shards, and whether it still is.

A local runner (``sweep run``) creates ``<prefix>/manifests/run_id=<id>/runner.json``
before dispatching, renews its heartbeat while it works and marks it finished or
interrupted when it stops. Status then tells a live run (fresh heartbeat) from an
abandoned one (stale heartbeat: the runner was killed), and a second runner of the same
run into the same results is refused while the first one lives. Cloud runs (SQS) have
no lease: their shards are the queue's, not one process's.

Taking over a stale lease is a read-then-write, so two runners starting within the
same moment on an abandoned run can both take it; a live lease is never taken.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import asdict, dataclass, replace
from typing import Literal

from sim_serverless_sweep.core.keys import runner_key
from sim_serverless_sweep.runtime.ports import ObjectStore
from sim_serverless_sweep.runtime.shard import Clock, utc_now

HEARTBEAT_S = 5.0
STALE_AFTER_S = 30.0  # six missed heartbeats: the runner is gone
RunnerState = Literal["running", "interrupted", "finished"]


@dataclass(frozen=True, slots=True)
class Lease:
    """What a runner records about itself."""

    run_id: str
    host: str
    pid: int
    command: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    state: RunnerState

    def is_live(self, now: dt.datetime) -> bool:
        """A running runner whose heartbeat is recent and, on this host, whose process exists."""
        age = (now - self.heartbeat_at).total_seconds()
        return self.state == "running" and age < STALE_AFTER_S and not self.is_dead_here()

    def is_mine(self) -> bool:
        return self.host == socket.gethostname() and self.pid == os.getpid()

    def is_dead_here(self) -> bool:
        """The runner was on this host and its process no longer exists (e.g. SIGKILL)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["heartbeat_at"] = self.heartbeat_at.isoformat()
        return json.dumps(data, indent=2, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Lease | None:
        try:
            raw = json.loads(data)
            return cls(
                run_id=str(raw["run_id"]),
                host=str(raw["host"]),
                pid=int(raw["pid"]),
                command=str(raw["command"]),
                started_at=dt.datetime.fromisoformat(raw["started_at"]),
                heartbeat_at=dt.datetime.fromisoformat(raw["heartbeat_at"]),
                state=raw["state"] if raw["state"] in ("running", "interrupted") else "finished",
            )
        except (ValueError, KeyError, TypeError):
            return None  # unreadable (e.g. cut short by a full disk): treated as abandoned

    def to_dict(self, now: dt.datetime) -> dict[str, object]:
        return {
            "host": self.host,
            "pid": self.pid,
            "command": self.command,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "heartbeat_at": self.heartbeat_at.isoformat(timespec="seconds"),
            "state": self.state,
            "live": self.is_live(now),
        }


class RunBusy(Exception):
    """Another live runner holds the run's lease."""

    def __init__(self, lease: Lease, now: dt.datetime) -> None:
        age = (now - lease.heartbeat_at).total_seconds()
        super().__init__(
            f"run_id: {lease.run_id!r} is already being run by process {lease.pid} on "
            f"{lease.host} (`{lease.command}`, started {lease.started_at:%H:%M:%S} UTC, "
            f"heartbeat {age:.0f} s ago); wait for it to finish"
        )
        self.lease = lease


def read_lease(store: ObjectStore, prefix: str, run_id: str) -> Lease | None:
    data = store.get(runner_key(prefix, run_id))
    return Lease.from_bytes(data) if data is not None else None


def acquire(
    store: ObjectStore, prefix: str, run_id: str, command: str, clock: Clock = utc_now
) -> Lease:
    """Take the run's lease, or raise RunBusy if a live runner holds it."""
    now = clock()
    lease = Lease(run_id, socket.gethostname(), os.getpid(), command, now, now, "running")
    key = runner_key(prefix, run_id)
    if store.put_if_absent(key, lease.to_bytes()):
        return lease
    held = read_lease(store, prefix, run_id)
    if held is not None and held.is_live(now) and not held.is_mine():
        raise RunBusy(held, now)
    store.put(key, lease.to_bytes())  # finished, interrupted or abandoned: ours now
    return lease


def renew(store: ObjectStore, prefix: str, lease: Lease, clock: Clock = utc_now) -> Lease:
    renewed = replace(lease, heartbeat_at=clock())
    store.put(runner_key(prefix, lease.run_id), renewed.to_bytes())
    return renewed


def release(
    store: ObjectStore, prefix: str, lease: Lease, state: RunnerState, clock: Clock = utc_now
) -> None:
    store.put(
        runner_key(prefix, lease.run_id),
        replace(lease, heartbeat_at=clock(), state=state).to_bytes(),
    )
