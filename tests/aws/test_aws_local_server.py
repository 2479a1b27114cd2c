"""`sweep serve` over real HTTP on 127.0.0.1: the same handler with local adapters."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SWEEP = Path(sys.executable).parent / "sweep"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    results = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAX_", "SWEEP_"))}
    process = subprocess.Popen(
        [str(SWEEP), "serve", "--port", "0", "--results", str(results), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", first)
    assert match, first
    try:
        yield match.group(1), results
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            process.stderr.close()


def _request(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:  # what `curl -d` sends
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_runs_the_demo_request(served: tuple[str, Path], demo_request_body: bytes) -> None:
    url, results = served
    status, body = _request(f"{url}/sweep-run", "POST", demo_request_body)
    assert status == 202, body
    assert body["status_url"].endswith("/sweep-run/demo-run-001")
    assert body["status_url"].startswith("http://127.0.0.1:")

    deadline = time.monotonic() + 60
    while True:
        status, state = _request(body["status_url"])
        assert status == 200
        if state["state"] != "running":
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert (state["succeeded_shards"], state["failed_shards"]) == ([0, 2, 3], [1])
    assert len(list(results.glob("sweeps/dataset=shard_metrics/**/*.parquet"))) == 6

    status, again = _request(f"{url}/sweep-run", "POST", demo_request_body)
    assert status == 202 and again["dispatched_shards"] == [1]  # only the failed shard

    status, bad = _request(f"{url}/sweep-run", "POST", b'{"run_id": "x", "seed": -1}')
    assert status == 400
    assert {p["field"] for p in bad["problems"]} >= {"seed", "dimensions"}
    assert _request(f"{url}/sweep-run/unknown-run")[0] == 404


def test_serve_refuses_a_negative_content_length(served: tuple[str, Path]) -> None:
    import socket

    url, results = served
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"POST /sweep-run HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}")
        chunks = []
        while chunk := conn.recv(4096):  # the server closes after its 400
            chunks.append(chunk)
        reply = b"".join(chunks).decode()
    assert reply.startswith("HTTP/1.1 400"), reply
    assert "must not be negative" in reply
    assert not results.exists()
