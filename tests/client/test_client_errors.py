"""Every way a remote call fails ends in one line with a documented exit code.

The answers come from a real local HTTP server scripted per test (API Gateway's own bodies
and the app's Problem bodies); the CLI runs in its own process. A request to the deployed
API's host name is routed to that server through an HTTP proxy setting, so the region,
signing and the 403 message are those of a real execute-api URL.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sim_serverless_sweep.client.api import ApiClient, ApiError, ErrorKind

from .conftest import FAKE_AWS, Recorder, clean_env, status_body

Sweep = Callable[..., CompletedProcess[str]]
API = "http://abc123.execute-api.eu-west-1.amazonaws.com"
SUBMIT_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/*/POST/sweep-run"
IAM_DENIAL = {
    "message": "User: arn:aws:sts::123456789012:assumed-role/analyst/me is not authorized to "
    "perform: execute-api:Invoke on resource: "
    "arn:aws:execute-api:eu-west-1:123456789012:abc123/$default/POST/sweep-run"
}


def _problem(error: str, field: str, rule: str, **extra: object) -> dict[str, object]:
    message = f"{field}: {rule}"
    item = {"field": field, "value": None, "rule": rule, "message": message}
    return {"error": error, "message": message, "problems": [item], **extra}


def _one_line_error(result: CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def request_file(write_request: Callable[..., Path]) -> Path:
    return write_request()


def _via_proxy(recorder: Recorder) -> dict[str, str]:
    return clean_env(**FAKE_AWS, http_proxy=recorder.url)


def test_403_names_the_action_and_resource_and_the_request_was_signed(
    sweep: Sweep, recorder: Recorder, request_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder.answers = [(403, IAM_DENIAL)]
    result = sweep("submit", str(request_file), "--api", API, env=_via_proxy(recorder))

    assert result.returncode == 2
    line = _one_line_error(result)
    assert "403 Forbidden" in line and "execute-api:Invoke on " + SUBMIT_ARN in line
    assert "submitter_policy_arn" in line
    (recorded,) = recorder.requests
    assert recorded.path == API + "/sweep-run"  # the proxy saw the absolute URL
    assert recorded.body == request_file.read_bytes()  # the file's bytes, as given
    headers = {k.lower(): v for k, v in recorded.headers.items()}
    assert headers["host"] == "abc123.execute-api.eu-west-1.amazonaws.com"
    assert headers["x-amz-security-token"] == FAKE_AWS["AWS_SESSION_TOKEN"]
    # botocore signs the same request at the same instant, for the host name's region and
    # the chain's credentials, to the same Authorization.
    when = dt.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: when)
    reference = AWSRequest(
        method="POST",
        url=API + "/sweep-run",
        data=recorded.body,
        headers={"Content-Type": "application/json"},
    )
    credentials = Credentials(
        FAKE_AWS["AWS_ACCESS_KEY_ID"],
        FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        FAKE_AWS["AWS_SESSION_TOKEN"],
    )
    SigV4Auth(credentials, "execute-api", "eu-west-1").add_auth(reference)
    assert headers["authorization"] == reference.headers["Authorization"]
    assert "/eu-west-1/execute-api/aws4_request" in headers["authorization"]


def test_403_of_an_unsigned_request_says_it_was_unsigned(sweep: Sweep, recorder: Recorder) -> None:
    recorder.answers = [(403, {"message": "Forbidden"})]
    result = sweep("status", "r1", "--api", API, "--no-sign", env=_via_proxy(recorder))
    assert result.returncode == 2
    assert "sent unsigned" in _one_line_error(result)
    assert "authorization" not in {k.lower() for k in recorder.requests[0].headers}


def test_no_credentials_is_one_line_and_sends_nothing(
    sweep: Sweep, recorder: Recorder, request_file: Path
) -> None:
    env = clean_env(
        AWS_CONFIG_FILE=FAKE_AWS["AWS_CONFIG_FILE"],
        AWS_SHARED_CREDENTIALS_FILE=FAKE_AWS["AWS_SHARED_CREDENTIALS_FILE"],
        AWS_EC2_METADATA_DISABLED="true",
        http_proxy=recorder.url,
    )
    result = sweep("submit", str(request_file), "--api", API, env=env)
    assert result.returncode == 2
    assert "no AWS credentials found" in _one_line_error(result)
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("status", "body", "code", "words"),
    [
        (
            409,
            _problem("run_conflict", "run_id", "already exists (seed: stored 1, this 2)"),
            2,
            ["409 Conflict (run_conflict)", "seed: stored 1, this 2"],
        ),
        (
            413,
            _problem("payload_too_large", "request", "body is 70000 bytes; the limit is 65536"),
            2,
            ["413", "payload_too_large", "the limit is 65536"],
        ),
        (
            503,
            _problem("dispatch_failed", "request", "queue closed", undispatched_shards=[0, 1])
            | {"retryable": True, "problems": []},
            5,
            ["503", "2 shard(s) were not enqueued", "(retryable); retry: ", " submit "],
        ),
        (
            500,
            {"error": "internal_error", "message": "boom", "problems": [], "retryable": False},
            5,
            ["500", "boom", "not retryable"],
        ),
        (502, {"message": "Internal Server Error"}, 5, ["502 Bad Gateway", "(retryable)"]),
        (504, {"message": "Endpoint request timed out"}, 5, ["504", "timed out", "(retryable)"]),
        (429, {"message": "Too Many Requests"}, 5, ["429", "(retryable)"]),
        (404, {"message": "Not Found"}, 2, ["404", "without /sweep-run"]),
        (200, {"hello": "world"}, 2, ["not a sweep API answer", "api_endpoint"]),
        (301, {}, 2, ["301", "redirected to"]),
    ],
)
def test_answers_become_one_line_with_their_exit_code(
    sweep: Sweep,
    recorder: Recorder,
    request_file: Path,
    status: int,
    body: dict[str, object],
    code: int,
    words: list[str],
) -> None:
    recorder.answers = [(status, body)]
    result = sweep("submit", str(request_file), "--api", recorder.url)
    line = _one_line_error(result)
    assert result.returncode == code, line
    for word in words:
        assert word in line, (word, line)


def test_a_400_from_the_api_prints_every_problem_like_sweep_run(
    sweep: Sweep, recorder: Recorder, request_file: Path
) -> None:
    # A deployment with a lower MAX_SHARDS than this machine refuses what passed here.
    first = _problem("invalid_request", "shard_count", "must be <= 1 (MAX_SHARDS)")
    second = _problem("invalid_request", "seed", "must be even")
    problems = [*first["problems"], *second["problems"]]  # type: ignore[misc]
    recorder.answers = [(400, {**first, "problems": problems})]
    result = sweep("submit", str(request_file), "--api", recorder.url)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: invalid request (2 problem(s)); nothing was written",
        "  - shard_count: must be <= 1 (MAX_SHARDS)",
        "  - seed: must be even",
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["status", "r1", "--api", "ftp://x"], "must start with https://"),
        (["status", "r1", "--api", "https://"], "has no host"),
        (["status", "r1", "--api", "https://h:99999"], "invalid port"),
        (["status", "r1", "--api", "https://h/?a=1"], "without ?query"),
        (["status", "r1", "--watch"], "need --api URL"),
        (["status", "../x", "--api", "http://127.0.0.1:1"], "run_id '../x'"),
        (["status", "r1", "--api", API, "--region", "us-east-1"], "the API URL is in eu-west-1"),
        (["status", "r1", "--api", "https://sweeps.example.com"], "pass --region REGION"),
        (["status", "r1", "--api", "http://127.0.0.1:1", "--prefix", "p"], "--prefix is for"),
    ],
)
def test_refused_arguments_are_one_line_exit_2(sweep: Sweep, args: list[str], words: str) -> None:
    result = sweep(*args)
    assert result.returncode == 2
    assert words in _one_line_error(result)


def test_unknown_host_is_a_network_error(sweep: Sweep) -> None:
    result = sweep("status", "r1", "--api", "http://no-such-host.invalid", "--no-sign")
    assert result.returncode == 5
    assert "cannot resolve host 'no-such-host.invalid'" in _one_line_error(result)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield listener.getsockname()[1]
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()


def test_no_answer_is_a_timeout_not_a_hang(silent_port: int) -> None:
    client = ApiClient(f"http://127.0.0.1:{silent_port}", None, timeout=0.3)
    with pytest.raises(ApiError) as caught:
        client.status("r1")
    assert caught.value.kind is ErrorKind.UNAVAILABLE and caught.value.retryable
    assert re.fullmatch(
        r"no answer from 127\.0\.0\.1:\d+ within 0\.3 s \(timeout\)", str(caught.value)
    )


def test_fields_a_newer_api_adds_are_ignored(recorder: Recorder) -> None:
    recorder.answers = [(200, status_body(failure_injection_shards=[1]))]
    assert ApiClient(recorder.url, None).status("r1").state == "succeeded"


def test_a_non_json_answer_is_not_taken_for_the_api(recorder: Recorder) -> None:
    recorder.answers = [(200, "<html>hello</html>")]
    with pytest.raises(ApiError) as caught:
        ApiClient(recorder.url, None).status("r1")
    assert caught.value.kind is ErrorKind.REFUSED
    assert "HTTP 200 but not a sweep API answer (not a JSON object)" in str(caught.value)
