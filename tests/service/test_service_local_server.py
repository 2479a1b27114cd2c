"""The local server in process (make_server on 127.0.0.1, port 0): the queue's own error,
the OpenAPI route, the problem shape for every refusal, routing edge cases, and the attacks
it must survive: hostile Host / X-Forwarded-Proto headers, concurrent identical resubmits,
a run another runner holds, and storage failures (a path below a file, a read-only or full
disk, a corrupt manifest) answered without server paths."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim_serverless_sweep.core.contract import parse_request
from sim_serverless_sweep.core.keys import runner_key
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.local.pool_queue import PoolQueue
from sim_serverless_sweep.local.server import LocalApiServer, make_server, serve_forever
from sim_serverless_sweep.runtime.lease import Lease
from sim_serverless_sweep.runtime.ports import QueueSendError
from sim_serverless_sweep.service.models import (
    DispatchFailed,
    InternalError,
    Problem,
    RunAccepted,
    StorageUnavailable,
)
from sim_serverless_sweep.service.openapi import openapi_document

TINY = {
    "run_id": "tiny",
    "dimensions": {"num_drivers": [5, 6], "horizon_min": [40], "warmup_min": [10]},
    "shard_count": 2,
    "seed": 1,
}


@dataclass
class Served:
    server: LocalApiServer
    queue: PoolQueue
    results: Path

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        host, port = self.server.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response, response.read()
        finally:
            conn.close()

    def post(self, request: dict[str, object]) -> tuple[int, bytes]:
        status, _, data = self.call(
            "POST", "/sweep-run", json.dumps(request).encode(), {"Content-Type": "application/json"}
        )
        return status, data


def _start(results: Path) -> Served:
    server, queue = make_server("127.0.0.1", 0, results, "sweeps", 1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Served(server, queue, results)


def _stop(served: Served) -> None:
    served.server.shutdown()
    served.server.server_close()
    served.queue.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    running = _start(tmp_path / "results")
    try:
        yield running
    finally:
        _stop(running)


def _files(results: Path) -> list[str]:
    return sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file())


def test_closed_queue_is_503_dispatch_failed_and_an_identical_resubmit_resumes(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    first = _start(results)
    try:
        first.queue.close()  # what a stopping `sweep serve` has
        status, data = first.post(TINY)
    finally:
        first.server.shutdown()
        first.server.server_close()
    assert status == 503, data
    body = DispatchFailed.model_validate_json(data)  # the documented shape, nothing extra
    assert body.undispatched_shards == [0, 1]
    assert "queue is closed" in body.message
    assert "resubmit the identical request" in body.message
    # The run is recorded and nothing else: the promise in the message can be kept.
    assert _files(results) == ["sweeps/manifests/run_id=tiny/manifest.json"]

    again = _start(results)  # a restarted `sweep serve` on the same folder
    try:
        status, data = again.post(TINY)
        assert status == 202, data
        accepted = RunAccepted.model_validate_json(data)
        assert (accepted.created, accepted.dispatched_shards) == (False, [0, 1])
        again.queue.join()
        status, _, raw = again.call("GET", "/sweep-run/tiny")
        assert status == 200
        assert json.loads(raw)["succeeded_shards"] == [0, 1]
    finally:
        _stop(again)


def test_openapi_document_is_served(served: Served) -> None:
    status, response, data = served.call("GET", "/openapi.json")
    assert status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(data) == openapi_document()


@pytest.mark.parametrize(
    ("method", "path", "status", "field"),
    [
        # Regressions: these were 405s naming the very method that was used, or the wrong
        # path, instead of a missing route.
        ("GET", "/sweep-run/a/b", 404, "path"),
        ("POST", "/sweep-run/", 404, "path"),
        ("GET", "/sweep-run/", 404, "path"),
        # A character outside the route's pattern is a bad run_id, not a missing route.
        ("GET", '/sweep-run/a"b', 400, "run_id"),
        # `$` in the run_id pattern matches before a trailing newline; fullmatch does not.
        ("GET", "/sweep-run/abc%0A", 400, "run_id"),
        ("GET", "/sweep-run/.hidden", 400, "run_id"),
        ("GET", "/sweep-run/no-such-run", 404, "run_id"),
        ("GET", "/elsewhere", 404, "path"),
        ("DELETE", "/sweep-run", 405, "method"),
        # Regressions: http.server answered these with an HTML 501 (the fuzzer sends QUERY).
        ("OPTIONS", "/sweep-run", 405, "method"),
        ("TRACE", "/sweep-run/x", 405, "method"),
        ("QUERY", "/sweep-run", 405, "method"),
        ("QUERY", "/sweep-run/x", 405, "method"),
        ("FOO", "/elsewhere", 404, "path"),
    ],
)
def test_every_refusal_has_the_problem_shape(
    served: Served, method: str, path: str, status: int, field: str
) -> None:
    got, response, data = served.call(method, path)
    assert got == status, data
    assert response.getheader("Content-Type") == "application/json"
    body = Problem.model_validate_json(data)
    assert [p.field for p in body.problems] == [field]
    if status == 405:
        allow = response.getheader("Allow")
        assert allow in ("GET", "POST") and allow != method
    assert not served.results.exists()


def test_head_gets_headers_and_no_body(served: Served) -> None:
    host, port = served.server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=30)
    try:
        conn.request("HEAD", "/sweep-run")
        head = conn.getresponse()
        assert (head.status, head.getheader("Allow"), head.read()) == (405, "POST", b"")
        # No body was written, so the kept-alive connection is still in step.
        conn.request("GET", "/sweep-run/no-such-run")
        after = conn.getresponse()
        assert after.status == 404
        assert Problem.model_validate_json(after.read()).problems[0].field == "run_id"
    finally:
        conn.close()


def _raw(served: Served, request: bytes) -> tuple[int, bytes]:
    host, port = served.server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):  # the server closes after refusing
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        (b"Content-Length: -1", 400, "content-length"),
        (b"Content-Length: ten", 400, "content-length"),
        (b"Transfer-Encoding: chunked", 411, "transfer-encoding"),
        (b"Content-Length: 99999999999", 413, "request"),
    ],
)
def test_the_servers_own_refusals_have_the_problem_shape(
    served: Served, headers: bytes, status: int, field: str
) -> None:
    got, data = _raw(served, b"POST /sweep-run HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n\r\n")
    assert got == status
    body = Problem.model_validate_json(data)  # was text/plain
    assert [p.field for p in body.problems] == [field]
    assert not served.results.exists()


def test_malformed_request_line_has_the_problem_shape(served: Served) -> None:
    got, data = _raw(served, b"GET / extra HTTP/1.1\r\n\r\n")
    assert got == 400
    assert Problem.model_validate_json(data).error == "invalid_request"


def test_serve_forever_lets_a_bind_error_through_before_listening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as raised:
            serve_forever("127.0.0.1", port, tmp_path / "results", "sweeps", 1)
    assert raised.value.errno == errno.EADDRINUSE
    assert "listening" not in capsys.readouterr().err
    assert not [t for t in threading.enumerate() if t.name == "sweep-pool-queue"]


def test_closed_pool_queue_raises_the_ports_error(tmp_path: Path) -> None:
    request = parse_request(json.dumps(TINY))
    plan = Plan.from_request(request)
    messages = [ShardMessage.for_shard(request, dt.date(2026, 1, 2), plan, s) for s in (0, 1)]
    queue = PoolQueue(tmp_path, "sweeps", 1)
    queue.close()
    queue.close()  # idempotent: no second sentinel, no hang
    with pytest.raises(QueueSendError, match="queue is closed") as raised:
        queue.send(messages)
    assert raised.value.shard_ids == [0, 1]
    assert not tmp_path.joinpath("sweeps").exists()


def test_service_imports_neither_aws_nor_local() -> None:
    code = (
        "import sys, sim_serverless_sweep.service.app, sim_serverless_sweep.service.openapi; "
        "print(sorted(m for m in sys.modules if m.startswith(('sim_serverless_sweep.aws', "
        "'sim_serverless_sweep.local'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_responses_are_sent_with_tcp_nodelay(served: Served) -> None:
    # Headers and body are two writes; with Nagle's algorithm the body waited ~40 ms for the
    # client's delayed ACK on every kept-alive response.
    seen: list[int] = []
    handler = served.server.RequestHandlerClass

    class Observed(handler):  # type: ignore[valid-type,misc]
        def setup(self) -> None:
            super().setup()
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    served.server.RequestHandlerClass = Observed
    assert served.call("GET", "/sweep-run/no-such-run")[0] == 404
    assert seen and seen[0] != 0


# status_url: nothing the client sends decides an absolute URL -------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "javascript://evil.example/%0a", "X-Forwarded-Proto": "javascript"},
        {"Host": "evil.example", "X-Forwarded-Proto": "https"},
        {"X-Forwarded-Proto": "data:text/html,<script>alert(1)</script>//"},
        {"Host": "127.0.0.1:1@evil.example"},
    ],
)
def test_status_url_ignores_host_and_forwarded_proto(
    served: Served, headers: dict[str, str]
) -> None:
    status, _, data = served.call(
        "POST",
        "/sweep-run",
        json.dumps(TINY).encode(),
        {"Content-Type": "application/json", **headers},
    )
    assert status == 202, data
    # Regression: came back as javascript://evil.example/.../sweep-run/tiny.
    assert RunAccepted.model_validate_json(data).status_url == (
        f"{served.server.url}/sweep-run/tiny"
    )


def test_status_url_is_relative_when_listening_on_every_interface(tmp_path: Path) -> None:
    server, queue = make_server("0.0.0.0", 0, tmp_path / "results", "sweeps", 1)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    running = Served(server, queue, tmp_path / "results")
    try:
        _, _, data = running.call(
            "POST", "/sweep-run", json.dumps(TINY).encode(), {"Host": "evil.example"}
        )
        assert RunAccepted.model_validate_json(data).status_url == "/sweep-run/tiny"
    finally:
        _stop(running)


# One run's shard is queued or running once at a time ----------------------------------

SLOW = {  # about a second per shard: every concurrent resubmit lands while both are pending
    "run_id": "slow",
    "dimensions": {"horizon_min": [720], "num_drivers": [40, 42]},
    "shard_count": 2,
    "replications": 8,
    "seed": 2,
}


@pytest.mark.chaos
def test_identical_concurrent_resubmits_run_each_shard_once(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sim_serverless_sweep.local.pool_queue")
    replies: list[tuple[int, bytes]] = []
    start = threading.Barrier(20)

    def submit() -> None:
        start.wait()
        replies.append(served.post(SLOW))

    callers = [threading.Thread(target=submit) for _ in range(20)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    served.queue.join()

    # Every caller is told the shards are on their way (queued once, by whichever was first).
    assert sorted(status for status, _ in replies) == [202] * 20
    bodies = [RunAccepted.model_validate_json(data) for _, data in replies]
    assert all(body.dispatched_shards == [0, 1] for body in bodies)
    assert sum(body.created for body in bodies) == 1
    # Regression: each of the 20 requests queued both shards, 40 deliveries for 2 shards.
    deliveries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("run slow")]
    assert len(deliveries) == 2, deliveries
    assert {d.split(":")[1].split()[0] for d in deliveries} == {"succeeded"}
    status, _, raw = served.call("GET", "/sweep-run/slow")
    assert status == 200
    assert json.loads(raw)["state"] == "succeeded"
    assert json.loads(raw)["runner"]["command"] == "sweep serve"


def test_a_run_another_live_runner_holds_is_not_run_twice(served: Served) -> None:
    # Another process on this host (`sweep run`, or a second `sweep serve`) runs it now.
    now = dt.datetime.now(dt.UTC)
    other = Lease("tiny", socket.gethostname(), os.getppid(), "sweep run", now, now, "running")
    lease = served.results / runner_key("sweeps", "tiny")
    lease.parent.mkdir(parents=True)
    lease.write_bytes(other.to_bytes())

    status, data = served.post(TINY)
    assert status == 503, data
    body = DispatchFailed.model_validate_json(data)
    assert body.undispatched_shards == [0, 1]
    assert f"already being run by process {os.getppid()}" in body.message
    assert "`sweep run`" in body.message
    assert lease.read_bytes() == other.to_bytes()  # left to its holder
    served.queue.join()
    assert not list(served.results.rglob("part-0.parquet"))


# Storage failures: 503 without server paths; no 500 body holds a path -------------------


def _no_server_paths(data: bytes, *paths: Path) -> None:
    text = data.decode()
    for path in paths:
        assert str(path) not in text, text
    assert "/tmp" not in text and "Errno" not in text, text


def test_a_results_path_below_a_file_is_503_storage_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    running = _start(blocker / "results")
    try:
        status, data = running.post(TINY)
        # Regression: 500 "NotADirectoryError: [Errno 20] Not a directory: '/tmp/...'".
        assert status == 503, data
        body = StorageUnavailable.model_validate_json(data)
        assert body.retryable and body.problems == []
        assert "Not a directory" in body.message and "resubmit" in body.message
        _no_server_paths(data, tmp_path)
        status, _, got = running.call("GET", "/sweep-run/tiny")
        assert status == 503
        StorageUnavailable.model_validate_json(got)
    finally:
        _stop(running)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.records.append(record)


@pytest.fixture
def app_log() -> Iterator[_Records]:
    """What the app logs (Powertools' logger, which does not propagate), formatted."""
    records = _Records()
    records.setFormatter(logging.Formatter("%(message)s"))
    powertools = logging.getLogger("sim-serverless-sweep")
    powertools.addHandler(records)
    try:
        yield records
    finally:
        powertools.removeHandler(records)


def test_an_unexpected_error_is_500_with_its_type_only(served: Served, app_log: _Records) -> None:
    assert served.post(TINY)[0] == 202
    served.queue.join()
    # A corrupt manifest: pydantic's message quotes what it read, here a server path.
    manifest = served.results / "sweeps/manifests/run_id=tiny/manifest.json"
    manifest.write_text(json.dumps({"run_id": "tiny", "note": str(served.results)}))
    status, _, data = served.call("GET", "/sweep-run/tiny")
    assert status == 500
    body = InternalError.model_validate_json(data)
    assert body.message.startswith("internal error (ValidationError); the server's log has")
    assert "request id " in body.message
    _no_server_paths(data, served.results)
    assert "input_value" not in data.decode()
    # The full error stays in the server's log, found by the request id.
    request_id = body.message.rsplit("request id ", 1)[1].rstrip(")")
    logged = "\n".join(app_log.lines)
    assert "request failed" in logged and "input_value" in logged
    assert request_id in {getattr(r, "request_id", None) for r in app_log.records}


def _mount_tmpfs(folder: Path, *options: str) -> bool:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, to fill or make read-only: a real disk; mounting it needs root."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if not _mount_tmpfs(folder, "size=4m"):
        pytest.skip("needs root to mount a tmpfs (a real full or read-only disk)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.chaos
def test_a_read_only_results_folder_is_503_and_reads_still_work(disk: Path) -> None:
    running = _start(disk)
    try:
        assert running.post(TINY)[0] == 202
        running.queue.join()
        assert _mount_tmpfs(disk, "remount", "ro")
        status, _, data = running.call("GET", "/sweep-run/tiny")
        assert status == 200 and json.loads(data)["state"] == "succeeded"
        status, data = running.post({**TINY, "run_id": "another"})
        # Regression: 500 "OSError: [Errno 30] Read-only file system: '/tmp/.../disk/...'".
        assert status == 503, data
        body = StorageUnavailable.model_validate_json(data)
        assert "Read-only file system" in body.message
        _no_server_paths(data, disk)
    finally:
        _stop(running)


@pytest.mark.chaos
def test_a_full_disk_is_503_and_leaves_nothing_half_written(disk: Path) -> None:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):  # write until the disk is full
        while True:
            os.write(fd, b"\0" * 65536)
    os.close(fd)
    running = _start(disk / "results")
    try:
        status, data = running.post(TINY)
        assert status == 503, data
        assert "No space left on device" in StorageUnavailable.model_validate_json(data).message
        _no_server_paths(data, disk)
        assert not [p for p in disk.rglob("*") if p.is_file() and p != filler]
        filler.unlink()  # room again: the identical request is accepted and runs
        assert running.post(TINY)[0] == 202
        running.queue.join()
        assert json.loads(running.call("GET", "/sweep-run/tiny")[2])["state"] == "succeeded"
    finally:
        _stop(running)
