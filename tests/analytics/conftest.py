"""Fixtures of the analytics tests: small real sweeps (run once per session and worker),
independent pyarrow readers, and a headless-Chromium page checker (DevTools protocol over
--remote-debugging-pipe; no browser-automation package needed)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim_serverless_sweep.cli import main as sweep_main

ROOT = Path(__file__).resolve().parents[2]
DEMO_REQUEST = ROOT / "examples" / "demo-run-001.json"

REPLICATED_REQUEST = {
    "run_id": "analytics-reps",
    "dimensions": {
        "commission_rate": [0.1, 0.3, 0.5],
        "num_drivers": [20, 40],
        "num_riders": [300],
        "horizon_min": [150],
        "warmup_min": [30],
    },
    "shard_count": 3,
    "seed": 11,
    "replications": 3,
    "failure_injection_shards": [2],
}


def _run(request_path: Path, results: Path) -> None:
    code = sweep_main(
        ["run", str(request_path), "--results", str(results), "--workers", "2", "--json"]
    )
    assert code == 0


@pytest.fixture(scope="session")
def demo_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spec's example request (8 points, shard 1 failure-injected), run for real."""
    results = tmp_path_factory.mktemp("demo") / "results"
    _run(DEMO_REQUEST, results)
    return results


@pytest.fixture(scope="session")
def reps_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-point sweep with 3 replications per point (shard 2 failure-injected)."""
    folder = tmp_path_factory.mktemp("reps")
    request = folder / "request.json"
    request.write_text(json.dumps(REPLICATED_REQUEST))
    _run(request, folder / "results")
    return folder / "results"


def read_dataset(results: Path, dataset: str, prefix: str = "sweeps") -> list[dict[str, Any]]:
    """Every row of a dataset, read file by file with pyarrow (no DuckDB, no hive parsing)."""
    files = sorted((results / prefix / f"dataset={dataset}").glob("**/part-0.parquet"))
    if not files:
        return []
    rows: list[dict[str, Any]] = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()
    return rows


@pytest.fixture(scope="session")
def read_rows() -> Callable[[Path, str], list[dict[str, Any]]]:
    return read_dataset


# ----------------------------------------------------------------- headless Chromium


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for reply in self._read(deadline):
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    result: dict[str, Any] = reply.get("result", {})
                    return result
                self.events.append(reply)

    def wait_event(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == name:
                    return self.events.pop(i)
            self.events.extend(self._read(deadline))

    def _read(self, deadline: float) -> list[dict[str, Any]]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from Chromium")
        ready, _, _ = select.select([self.read_fd], [], [], remaining)
        if not ready:
            raise TimeoutError("no answer from Chromium")
        chunk = os.read(self.read_fd, 1 << 20)
        if not chunk:
            raise RuntimeError("Chromium closed the DevTools pipe")
        self.buffer += chunk
        *complete, self.buffer = self.buffer.split(b"\0")
        return [json.loads(m) for m in complete if m]


def chromium_binary() -> str | None:
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


def check_page(html_path: Path, user_data: Path) -> dict[str, Any]:
    """Open a page in headless Chromium; return its title, visible text, images and
    console/JS errors."""
    binary = chromium_binary()
    assert binary is not None, "chromium is not installed (apt-get install chromium)"
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def wire() -> None:  # runs in the child: Chromium reads fd 3 and writes fd 4
        # dup first: the pipe ends may already be fds 3/4, and os.pipe() ends close on exec.
        read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(read_end, 3, inheritable=True)
        os.dup2(write_end, 4, inheritable=True)

    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--remote-debugging-pipe",
            f"--user-data-dir={user_data}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=wire,
        close_fds=False,
    )
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    pipe = _Pipe(to_chrome_w, from_chrome_r)
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Page.navigate", {"url": html_path.resolve().as_uri()}, session=session)
        pipe.wait_event("Page.loadEventFired")
        images = pipe.call(
            "Runtime.evaluate",
            {
                "expression": "JSON.stringify(Array.from(document.images).map(i => "
                "({alt: i.alt, complete: i.complete, width: i.naturalWidth})))",
                "returnByValue": True,
            },
            session=session,
        )["result"]["value"]
        title, text = (
            pipe.call(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True},
                session=session,
            )["result"]["value"]
            for expression in ("document.title", "document.body.innerText")
        )
        pipe.call("Runtime.evaluate", {"expression": "1"}, session=session)  # flush events
        errors = []
        for event in pipe.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(str(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                errors.append(str(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(str(params["entry"].get("text")))
        return {"title": title, "text": text, "images": json.loads(images), "errors": errors}
    finally:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            pipe.call("Browser.close", timeout=5)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        os.close(to_chrome_w)
        os.close(from_chrome_r)


NO_CHROMIUM = (
    "headless Chromium not found: install it with "
    "`apt-get install -y --no-install-recommends chromium` (as root), "
    "or run `make test` as root, which installs it"
)


@pytest.fixture(scope="session")
def open_in_chromium(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], dict[str, Any]]:
    """Page checker; skips without Chromium unless SWEEP_REQUIRE_BROWSER=1 (CI) fails."""
    if chromium_binary() is None:
        if os.environ.get("SWEEP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"SWEEP_REQUIRE_BROWSER=1 and {NO_CHROMIUM}")
        pytest.skip(NO_CHROMIUM)

    def run(path: Path) -> dict[str, Any]:
        return check_page(path, tmp_path_factory.mktemp("chromium-profile"))

    return run
