"""Client fixtures: a real `sweep serve`, a recording HTTP server, and the CLI in a process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ENTRY = Path(__file__).with_name("sweep_entry.py")
SERVE = [sys.executable, "-m", "sim_serverless_sweep", "serve"]
# Credentials of nobody, and no files or metadata service to find others in.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "session-token-example",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
TINY: dict[str, Any] = {
    "run_id": "remote-tiny",
    "dimensions": {"horizon_min": [60], "warmup_min": [10], "num_drivers": [5, 6]},
    "shard_count": 2,
    "seed": 11,
}


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without AWS, proxy or sweep settings, plus ``extra``."""
    dropped = ("AWS_", "SWEEP_", "MAX_")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(dropped) and k.lower() not in ("http_proxy", "https_proxy", "no_proxy")
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_sweep(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The CLI (with the remote commands wired) in a real process."""
    return subprocess.run(
        [sys.executable, str(ENTRY), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(**FAKE_AWS),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def sweep() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_sweep


@pytest.fixture
def write_request(tmp_path: Path) -> Callable[..., Path]:
    """write_request(name="tiny.json", **fields): TINY with fields replaced, as a file."""

    def write(name: str = "tiny.json", **fields: Any) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({**TINY, **fields}))
        return path

    return write


@dataclass
class Served:
    url: str
    results: Path
    process: subprocess.Popen[bytes]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`python -m sim_serverless_sweep serve --port 0 --workers 1` on a fresh results folder."""
    results = tmp_path / "results"
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:  # a file: the access log could fill a pipe
        process = subprocess.Popen(
            [*SERVE, "--port", "0", "--results", str(results), "--workers", "1"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=clean_env(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"listening on (http://\S+) ", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield Served(match[1], results, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # pool workers included
        process.wait(timeout=30)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """A local HTTP server that records every request and answers from a script."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    # (status, JSON body) answers in order; the last one repeats.
    answers: list[tuple[int, Any]] = field(default_factory=lambda: [(200, {})])

    def answer(self) -> tuple[int, Any]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            recorder.requests.append(
                Recorded(self.command, self.path, dict(self.headers.items()), body)
            )
            status, payload = recorder.answer()
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


def status_body(state: str = "succeeded", **fields: Any) -> dict[str, Any]:
    """A RunStatusBody of a 2-shard run (both succeeded unless fields say otherwise)."""
    body: dict[str, Any] = {
        "run_id": "r1",
        "run_date": "2026-12-01",
        "points": 2,
        "shard_count": 2,
        "state": state,
        "runner": None,
        "succeeded": 2,
        "failed": 0,
        "pending": 0,
        "succeeded_shards": [0, 1],
        "failed_shards": [],
        "pending_shards": [],
    }
    return {**body, **fields}
