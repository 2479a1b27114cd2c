"""Local HTTP API: HTTP requests become API Gateway payload-2.0 events for SweepApp.handle.

``sweep serve`` runs the same handler as the Lambda function, wired to the filesystem
store and the background process-pool queue instead of S3 and SQS.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import sys
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sim_serverless_sweep.core.contract import ConfigError, Limits
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.local.pool import DEFAULT_MAX_ATTEMPTS, default_workers
from sim_serverless_sweep.local.pool_queue import PoolQueue
from sim_serverless_sweep.service.app import SweepApp

# API Gateway's payload limit: larger requests never reach the function.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")


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

    def __init__(self, address: tuple[str, int], app: SweepApp) -> None:
        super().__init__(address, _RequestHandler)
        self.app = app

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds; a client that stalls mid-body must not hold a thread forever

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send_plain(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send_plain(HTTPStatus.BAD_REQUEST, "Content-Length is not an integer")
            return
        if length < 0:
            self._send_plain(HTTPStatus.BAD_REQUEST, "Content-Length must not be negative")
            return
        if length > MAX_PAYLOAD_BYTES:
            self._send_plain(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"payload is {length} bytes; the API limit is {MAX_PAYLOAD_BYTES}",
            )
            return
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        event = http_event(
            self.command,
            self.path,
            dict(self.headers.items()),
            body,
            host=host,
            source_ip=self.client_address[0],
        )
        response = self.server.app.handle(event, None)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        self.send_response(int(response["statusCode"]))
        for name, value in (response.get("headers") or {}).items():
            self.send_header(name, str(value))
        for name, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                self.send_header(name, str(value))
        for cookie in response.get("cookies") or []:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_plain(self, status: HTTPStatus, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(int(status))
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True


def make_server(
    host: str,
    port: int,
    results: Path,
    prefix: str,
    workers: int | None,
    limits: Limits | None = None,
) -> tuple[LocalApiServer, PoolQueue]:
    """A bound (not yet serving) server and its background queue; port 0 picks a free port."""
    queue = PoolQueue(results, prefix, workers or default_workers())
    app = SweepApp(
        store=FilesystemStore(results),
        queue=queue,
        prefix=prefix,
        limits=limits or Limits(),
        max_receive_count=DEFAULT_MAX_ATTEMPTS,
    )
    return LocalApiServer((host, port), app), queue


def serve_forever(host: str, port: int, results: Path, prefix: str, workers: int | None) -> None:
    """Serve POST /sweep-run and GET /sweep-run/RUN_ID until interrupted (Ctrl-C)."""
    # Shard progress to stderr; the handler's JSON log lines stay on stdout.
    progress = logging.StreamHandler(sys.stderr)
    progress.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    local_log = logging.getLogger("sim_serverless_sweep.local")
    local_log.addHandler(progress)
    local_log.setLevel(logging.INFO)
    try:
        limits = Limits.from_env(os.environ)  # MAX_SHARDS / MAX_POINTS, as in Lambda
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    server, queue = make_server(host, port, results, prefix, workers, limits)
    if host not in LOOPBACK:
        print(f"warning: binding {host}: the API has no authentication", file=sys.stderr)
    print(
        f"sweep serve: listening on {server.url} (results in {results}); "
        "POST /sweep-run, GET /sweep-run/RUN_ID; Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("sweep serve: stopping; waiting for running shards", file=sys.stderr)
    finally:
        server.server_close()
        queue.close()
