"""What the client sends on the wire is botocore's SigV4 signature of exactly that request.

A recording HTTP server captures the request; the test signs the same request with
botocore's SigV4Auth directly, and also recomputes the canonical request and signature
from the captured bytes by the SigV4 rules, so a header or body changed after signing
would show.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sim_serverless_sweep.client import api as client_api
from sim_serverless_sweep.client.api import ApiClient
from sim_serverless_sweep.client.signing import (
    Signer,
    SigningError,
    api_host,
    is_loopback,
    region_for,
)
from sim_serverless_sweep.service import app

from .conftest import Recorded, Recorder, status_body

NOW = dt.datetime(2026, 12, 1, 12, 30, 45, tzinfo=dt.UTC)
REGION = "eu-west-1"
ACCESS_KEY, SECRET_KEY, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<scope>[^,]+), "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)
ACCEPTED = {
    "run_id": "r1",
    "run_date": "2026-12-01",
    "points": 2,
    "shard_count": 2,
    "created": True,
    "dispatched_shards": [0, 1],
    "already_succeeded_shards": [],
    "status_url": "http://127.0.0.1/sweep-run/r1",
}


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore's signing clock, for the client and the reference signature alike.
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))


def _reference(
    method: str, url: str, headers: dict[str, str], body: bytes, token: str | None
) -> tuple[dict[str, str], str]:
    """botocore's signed headers for the request, and its canonical request."""
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), "execute-api", REGION)
    signer.add_auth(request)
    signed = dict(request.headers.items())
    del request.headers["Authorization"]  # the canonical request is of the unsigned headers
    return signed, signer.canonical_request(request)


def _header(recorded: Recorded, name: str) -> str | None:
    return next((v for k, v in recorded.headers.items() if k.lower() == name), None)


def _wire_canonical_request(recorded: Recorded, signed: list[str]) -> str:
    """SigV4's canonical request, built from what arrived (no query strings here)."""
    lines = "".join(f"{h}:{' '.join((_header(recorded, h) or '').split())}\n" for h in signed)
    return "\n".join(
        [
            recorded.method,
            recorded.path,
            "",
            lines,
            ";".join(signed),
            hashlib.sha256(recorded.body).hexdigest(),
        ]
    )


def _signature(canonical: str, scope: str) -> str:
    date, region, service, terminal = scope.split("/")
    key = f"AWS4{SECRET_KEY}".encode()
    for part in (date, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            NOW.strftime("%Y%m%dT%H%M%SZ"),
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _check_wire(recorded: Recorded, reference: dict[str, str], canonical: str) -> None:
    auth = _header(recorded, "authorization")
    assert auth == reference["Authorization"]
    match = AUTHORIZATION.fullmatch(auth or "")
    assert match, auth
    assert match["key"] == ACCESS_KEY
    assert match["scope"] == f"{NOW:%Y%m%d}/{REGION}/execute-api/aws4_request"
    assert _header(recorded, "x-amz-date") == reference["X-Amz-Date"] == "20261201T123045Z"
    signed = match["signed"].split(";")
    assert {"host", "x-amz-date"} <= set(signed)
    wire = _wire_canonical_request(recorded, signed)
    assert wire == canonical
    assert _signature(wire, match["scope"]) == match["signature"]


def test_submit_sends_botocore_signature_of_the_request_on_the_wire(recorder: Recorder) -> None:
    recorder.answers = [(202, ACCEPTED)]
    body = json.dumps({"run_id": "r1", "seed": 1}).encode()
    signer = Signer(Credentials(ACCESS_KEY, SECRET_KEY, TOKEN), REGION)

    code, accepted = ApiClient(recorder.url, signer).submit(body)

    assert (code, accepted.run_id) == (202, "r1")
    (recorded,) = recorder.requests
    assert (recorded.method, recorded.path, recorded.body) == ("POST", "/sweep-run", body)
    reference, canonical = _reference(
        "POST",
        f"{recorder.url}/sweep-run",
        {"Content-Type": "application/json"},
        body,
        TOKEN,
    )
    assert _header(recorded, "x-amz-security-token") == TOKEN
    assert reference["X-Amz-Security-Token"] == TOKEN
    _check_wire(recorded, reference, canonical)
    signed = AUTHORIZATION.fullmatch(_header(recorded, "authorization") or "")
    assert signed and signed["signed"] == "content-type;host;x-amz-date;x-amz-security-token"
    # No unsigned-payload shortcut: the body's hash is in the canonical request.
    assert _header(recorded, "x-amz-content-sha256") is None


def test_status_get_is_signed_without_a_token_when_there_is_none(recorder: Recorder) -> None:
    recorder.answers = [(200, status_body())]
    signer = Signer(Credentials(ACCESS_KEY, SECRET_KEY), REGION)

    assert ApiClient(recorder.url + "/", signer).status("r1").state == "succeeded"

    (recorded,) = recorder.requests
    assert (recorded.method, recorded.path, recorded.body) == ("GET", "/sweep-run/r1", b"")
    assert _header(recorded, "x-amz-security-token") is None
    reference, canonical = _reference("GET", f"{recorder.url}/sweep-run/r1", {}, b"", None)
    _check_wire(recorded, reference, canonical)


def test_unsigned_client_sends_no_aws_headers(recorder: Recorder) -> None:
    recorder.answers = [(200, status_body())]
    ApiClient(recorder.url, None).status("r1")
    (recorded,) = recorder.requests
    assert not {k.lower() for k in recorded.headers} & {
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
    }


def test_region_comes_from_the_url_then_region_then_environment() -> None:
    url = "https://abc123.execute-api.ap-southeast-2.amazonaws.com"
    assert api_host(url) == ("abc123", "ap-southeast-2")
    assert region_for(url, None, {"AWS_REGION": "us-east-1"}) == "ap-southeast-2"
    assert region_for(url, "ap-southeast-2", {}) == "ap-southeast-2"
    with pytest.raises(SigningError, match="the API URL is in ap-southeast-2"):
        region_for(url, "us-east-1", {})
    custom = "https://sweeps.example.com"
    assert api_host(custom) is None
    assert region_for(custom, "eu-central-1", {"AWS_REGION": "us-east-1"}) == "eu-central-1"
    assert region_for(custom, None, {"AWS_REGION": "us-east-1"}) == "us-east-1"
    assert region_for(custom, None, {"AWS_DEFAULT_REGION": "us-west-2"}) == "us-west-2"
    assert region_for(custom, None, {}) is None


def test_only_this_machine_is_unsigned() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"):
        assert is_loopback(url), url
    for url in ("http://127.0.0.2", "https://abc.execute-api.eu-west-1.amazonaws.com"):
        assert not is_loopback(url), url


def test_client_route_is_the_apps() -> None:
    assert client_api.ROUTE == app.ROUTE
