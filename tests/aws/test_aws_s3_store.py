"""ObjectStore contract on the S3 adapter (moto over HTTP) beside the memory and filesystem
adapters, plus S3 throttling/5xx retried by botocore's configuration through a real proxy."""

from __future__ import annotations

import http.client
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from sim_serverless_sweep.aws.clients import CLIENT_CONFIG
from sim_serverless_sweep.aws.s3_store import S3Store
from sim_serverless_sweep.local.fs_store import FilesystemStore
from sim_serverless_sweep.local.memory import MemoryStore
from sim_serverless_sweep.runtime.ports import ObjectStore


@pytest.fixture(params=["memory", "filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, s3: Any) -> ObjectStore:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "filesystem":
        return FilesystemStore(tmp_path)
    bucket = f"store-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return S3Store(s3, bucket)


def test_put_get_exists_delete(store: ObjectStore) -> None:
    key = "p/dataset=x/run_id=r/part-0.parquet"
    assert store.get(key) is None and not store.exists(key)
    store.put(key, b"\x00\xffone")
    assert store.get(key) == b"\x00\xffone" and store.exists(key)
    store.put(key, b"two")  # overwrite
    assert store.get(key) == b"two"
    store.delete(key)
    store.delete(key)  # missing is fine
    assert store.get(key) is None and not store.exists(key)


def test_put_if_absent_creates_once(store: ObjectStore) -> None:
    key = "p/outcome/part-0.parquet"
    assert store.put_if_absent(key, b"first") is True
    assert store.put_if_absent(key, b"second") is False
    assert store.get(key) == b"first"


def test_list_keys_is_sorted_and_prefix_bound(store: ObjectStore) -> None:
    for key in ("a/b/2", "a/b/10", "a/b/1", "a/c/1", "ab/1"):
        store.put(key, b"x")
    assert list(store.list_keys("a/b/")) == ["a/b/1", "a/b/10", "a/b/2"]
    assert list(store.list_keys("a/")) == ["a/b/1", "a/b/10", "a/b/2", "a/c/1"]
    assert list(store.list_keys("zzz/")) == []


def test_s3_list_keys_follows_pages(make_client: Callable[[str], Any]) -> None:
    client = make_client("s3")
    bucket = f"pages-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    pages: list[int] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["MaxKeys"] = 2  # force several ListObjectsV2 round trips

    def count(parsed: dict[str, Any], **_: Any) -> None:
        pages.append(len(parsed.get("Contents", [])))

    client.meta.events.register("before-parameter-build.s3.ListObjectsV2", small_pages)
    client.meta.events.register("after-call.s3.ListObjectsV2", count)
    store = S3Store(client, bucket)
    keys = [f"k/{i:02d}" for i in range(5)]
    for key in keys:
        store.put(key, b"x")
    assert list(store.list_keys("k/")) == keys
    assert pages == [2, 2, 1]


class _FaultyProxy(ThreadingHTTPServer):
    """HTTP proxy to moto that answers the first PUTs with S3 error responses."""

    daemon_threads = True

    def __init__(self, upstream: str, faults: list[tuple[int, str]]) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urlsplit(upstream)
        self.faults = list(faults)
        self.puts = 0
        self.lock = threading.Lock()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _FaultyProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            fault = None
            if self.command == "PUT":
                self.server.puts += 1
                fault = self.server.faults.pop(0) if self.server.faults else None
        if fault is not None:
            status, code = fault
            data = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                f"<Message>injected</Message></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        upstream = http.client.HTTPConnection(self.server.upstream.netloc, timeout=30)
        upstream.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "server",
                "date",
            ):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward


@pytest.fixture
def faulty_s3(
    moto_endpoint: str, aws_kwargs: dict[str, str]
) -> Iterator[Callable[[list[tuple[int, str]]], tuple[Any, _FaultyProxy]]]:
    proxies: list[_FaultyProxy] = []

    def make(faults: list[tuple[int, str]]) -> tuple[Any, _FaultyProxy]:
        proxy = _FaultyProxy(moto_endpoint, faults)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        proxies.append(proxy)
        host, port = proxy.server_address[:2]
        client = boto3.session.Session().client(
            "s3", config=CLIENT_CONFIG, **{**aws_kwargs, "endpoint_url": f"http://{host!s}:{port}"}
        )
        return client, proxy

    yield make
    for proxy in proxies:
        proxy.shutdown()
        proxy.server_close()


@pytest.mark.parametrize(
    "fault", [(503, "SlowDown"), (500, "InternalError")], ids=["throttled", "server-error"]
)
def test_put_is_retried_by_botocore_config(fault: tuple[int, str], faulty_s3: Any, s3: Any) -> None:
    client, proxy = faulty_s3([fault])
    bucket = f"retry-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    retries: list[int] = []
    client.meta.events.register(
        "after-call.s3.PutObject",
        lambda http_response, parsed, **_: retries.append(
            parsed["ResponseMetadata"]["RetryAttempts"]
        ),
    )
    S3Store(client, bucket).put("k/part-0.parquet", b"data")
    assert proxy.puts == 2 and retries == [1]
    assert s3.get_object(Bucket=bucket, Key="k/part-0.parquet")["Body"].read() == b"data"


def test_conditional_create_after_a_throttle_still_reports_existing(
    faulty_s3: Any, s3: Any
) -> None:
    client, proxy = faulty_s3([(503, "SlowDown")])
    bucket = f"retry-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    assert S3Store(client, bucket).put_if_absent("k", b"new") is False
    assert proxy.puts == 2
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"old"
