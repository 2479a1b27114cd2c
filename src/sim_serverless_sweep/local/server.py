"""Local HTTP API: HTTP requests become API Gateway payload-2.0 events for SweepApp.handle.

``sweep serve`` runs the same handler as the Lambda function, wired to the filesystem
store and the background process-pool queue instead of S3 and SQS. It also serves the
OpenAPI document at ``GET /openapi.json``.

Nothing the client sends decides an absolute URL in a response: the event's domain name is
the address the server listens on (not the Host header), and ``status_url`` is built from
that address, or is relative when the server listens on every interface.

Ctrl-C or SIGTERM stops the server: no new requests, queued shards are dropped, running
ones get the pool's grace period (a second signal ends them at once), then one line says
what finished and that an identical resubmit resumes; the exit code is 128 + the signal.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sim_serverless_sweep.core.contract import ConfigError, FieldProblem, Limits
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.local.pool import (
    DEFAULT_MAX_ATTEMPTS,
    STOP_GRACE_S,
    StopRequested,
    default_workers,
)
from sim_serverless_sweep.local.pool_queue import PoolQueue
from sim_serverless_sweep.service.app import JSON, SweepApp
from sim_serverless_sweep.service.models import ERROR_CODES, problem

# API Gateway's payload limit: larger requests never reach the function.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Listening on every interface: the server's own address says nothing about how clients
# reach it, so status_url is relative.
WILDCARD = ("", "0.0.0.0", "::")
OPENAPI_PATH = "/openapi.json"


def http_event(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    host: str,
    source_ip: str = "127.0.0.1",
    scheme: str = "http",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event for one request ($default stage).

    ``host`` becomes ``requestContext.domainName``: pass the server's own address, never
    the client's Host header (API Gateway sets that field itself; clients cannot).

    >>> http_event("GET", "/sweep-run/r1?x=1", {}, b"", host="h")["rawQueryString"]
    'x=1'
    """
    parts = urlsplit(target)
    lowered = {k.lower(): v for k, v in headers.items()}
    lowered.setdefault("x-forwarded-proto", scheme)
    try:
        text, encoded = body.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = dt.datetime.now(dt.UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "local",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if body:
        event["body"] = text
    return event


class LocalApiServer(ThreadingHTTPServer):
    """Threaded HTTP server in front of a SweepApp."""

    daemon_threads = True
    # socketserver's default backlog of 5 reset connections in a burst of 20 identical
    # concurrent submits; the kernel caps this at net.core.somaxconn.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SweepApp) -> None:
        super().__init__(address, _RequestHandler)
        self.app = app
        self._openapi: bytes | None = None

    @property
    def openapi(self) -> bytes:
        """The OpenAPI document, built on first use (keeps start-up fast)."""
        if self._openapi is None:
            from sim_serverless_sweep.service.openapi import document_text

            self._openapi = document_text().encode()
        return self._openapi

    @property
    def address(self) -> str:
        """host:port the server listens on."""
        host, port = self.server_address[:2]
        host = str(host)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds; a client that stalls mid-body must not hold a thread forever
    # Headers and body go out in two writes: with Nagle's algorithm the body waited for the
    # client's delayed ACK, ~40 ms on every kept-alive response.
    disable_nagle_algorithm = True

    def _dispatch(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(HTTPStatus.LENGTH_REQUIRED, "transfer-encoding", "send a Content-Length")
            return
        raw_length = self.headers.get("Content-Length")
        try:
            length = int(raw_length or 0)
        except ValueError:
            self._refuse(HTTPStatus.BAD_REQUEST, "content-length", "must be an integer", raw_length)
            return
        if length < 0:
            self._refuse(HTTPStatus.BAD_REQUEST, "content-length", "must not be negative", length)
            return
        if length > MAX_PAYLOAD_BYTES:
            self._refuse(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "request",
                f"payload is {length} bytes; the API limit is {MAX_PAYLOAD_BYTES}",
                length,
            )
            return
        body = self.rfile.read(length) if length else b""
        if self.command in ("GET", "HEAD") and urlsplit(self.path).path == OPENAPI_PATH:
            self._send(HTTPStatus.OK, {"Content-Type": JSON}, self.server.openapi)
            return
        event = http_event(
            self.command,
            self.path,
            dict(self.headers.items()),
            body,
            host=self.server.address,  # not the Host header: clients choose that
            source_ip=self.client_address[0],
        )
        response = self.server.app.handle(event, None)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        headers = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(value)) for value in values)
        headers.extend(("Set-Cookie", cookie) for cookie in response.get("cookies") or [])
        self._send(HTTPStatus(int(response["statusCode"])), headers, data)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server looks up do_<METHOD>: every method, even one it does not know (QUERY),
        # goes to the app (405 on the API's paths, 404 elsewhere), never to an HTML 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _send(
        self,
        status: HTTPStatus,
        headers: dict[str, str] | list[tuple[str, str]],
        data: bytes,
        *,
        close: bool = False,
    ) -> None:
        self.send_response(int(status))
        for name, value in headers.items() if isinstance(headers, dict) else headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _refuse(self, status: HTTPStatus, field: str, rule: str, value: object = None) -> None:
        """A problem body from the server itself; the connection closes (body not read)."""
        body = problem(status, [FieldProblem(field, value, rule)]).model_dump_json()
        self._send(status, {"Content-Type": JSON}, body.encode(), close=True)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own rejections (bad request line, header limits, unknown method) in
        # the API's problem shape rather than HTML.
        status = HTTPStatus(code)
        if status not in ERROR_CODES:
            super().send_error(code, message, explain)
            return
        self._refuse(status, "request", message or status.phrase)


def make_server(
    host: str,
    port: int,
    results: Path,
    prefix: str,
    workers: int | None,
    limits: Limits | None = None,
) -> tuple[LocalApiServer, PoolQueue]:
    """A bound (not yet serving) server and its background queue; port 0 picks a free port.

    An OSError from binding (port in use, bad address) propagates unchanged.
    """
    queue = PoolQueue(results, prefix, workers or default_workers())
    app = SweepApp(
        store=FilesystemStore(results),
        queue=queue,
        prefix=prefix,
        limits=limits or Limits(),
        max_receive_count=DEFAULT_MAX_ATTEMPTS,
        resubmit_verify="size",
    )
    try:
        server = LocalApiServer((host, port), app)
    except BaseException:
        queue.close()  # no thread left behind by a failed bind
        raise
    app.base_url = "" if host in WILDCARD else server.url
    return server, queue


def serve_forever(host: str, port: int, results: Path, prefix: str, workers: int | None) -> int:
    """Serve POST /sweep-run and GET /sweep-run/RUN_ID until Ctrl-C or SIGTERM.

    Returns the exit code: 130 after Ctrl-C, 143 after SIGTERM (128 + the signal), 0 if
    the server was shut down otherwise. An OSError from binding propagates before
    anything is printed or set up.
    """
    try:
        limits = Limits.from_env(os.environ)  # MAX_SHARDS / MAX_POINTS, as in Lambda
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    server, queue = make_server(host, port, results, prefix, workers, limits)
    # Shard progress to stderr; the handler's JSON log lines stay on stdout.
    progress = logging.StreamHandler(sys.stderr)
    progress.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    local_log = logging.getLogger("sim_serverless_sweep.local")
    local_log.addHandler(progress)
    local_log.setLevel(logging.INFO)
    if host not in LOOPBACK:
        print(f"warning: binding {host}: the API has no authentication", file=sys.stderr)
    print(
        f"sweep serve: listening on {server.url} (results in {results}); "
        "POST /sweep-run, GET /sweep-run/RUN_ID; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    stops = _StopSignals(queue)
    with stops.installed():
        try:
            server.serve_forever()
        except StopRequested:
            pass  # from stops: SIGINT or SIGTERM in this (the main) thread
        finally:
            server.server_close()  # no new connections while the queue stops
        if stops.signum is None:  # shut down by its owner (tests): finish the work
            queue.close()
            return 0
        if queue.busy():
            print(
                f"sweep serve: stopping: no new shards; running ones get {STOP_GRACE_S:.0f} s "
                "(press Ctrl-C again to end them now)",
                file=sys.stderr,
                flush=True,
            )
        report = queue.close(abort=True)
        name = "Ctrl-C" if stops.signum == signal.SIGINT else signal.Signals(stops.signum).name
        print(f"sweep serve: stopped by {name}: {report.describe()}", file=sys.stderr, flush=True)
    return 128 + stops.signum


class _StopSignals:
    """SIGINT and SIGTERM while serving: the first unwinds ``serve_forever`` (StopRequested
    in the main thread); later ones end the running shards at once and never raise, so
    the stop itself is never cut short by a traceback."""

    def __init__(self, queue: PoolQueue) -> None:
        self.queue = queue
        self.signum: int | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            raise StopRequested(signum)
        self.queue.abort_now()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers live in the main thread only (in-process tests)
            return
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
