"""The API's client: stdlib HTTP, typed answers, and one-line errors for every failure.

Works against the deployed HTTP API (SigV4-signed by ``signing.Signer``) and against
`sweep serve` (unsigned). Answers are parsed into the service's response models, so a
body that does not fit is reported rather than half-read.
"""

from __future__ import annotations

import enum
import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from sim_serverless_sweep import __version__
from sim_serverless_sweep.client.signing import Signer, api_host, partition_of
from sim_serverless_sweep.service.models import DispatchFailed, Problem, RunAccepted, RunStatusBody

# service.app.ROUTE (a test keeps them equal; service.app itself loads Powertools).
ROUTE = "/sweep-run"
# What a caller must be allowed to invoke, as (method, resource path) of the route's ARN:
# arn:PARTITION:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH.
SUBMIT_PERMISSION = ("POST", ROUTE)
STATUS_PERMISSION = ("GET", ROUTE + "/*")
INVOKE_ACTION = "execute-api:Invoke"
# API Gateway's integration timeout is 30 s; allow for the network on top.
REQUEST_TIMEOUT_S = 35.0
MAX_ANSWER_BYTES = 10 * 1024 * 1024
_ACCOUNT_IN_ARN = re.compile(r"arn:aws[a-z-]*:(?:execute-api|iam|sts):[a-z0-9-]*:(\d{12}):")

Model = TypeVar("Model", bound=BaseModel)


class ErrorKind(enum.Enum):
    INVALID = "invalid"  # 400 with field-named problems: fix the request
    REFUSED = "refused"  # any other 4xx or a wrong URL: change the request, URL or rights
    UNAVAILABLE = "unavailable"  # network, timeout, throttling, 5xx: the service side


class ApiError(Exception):
    """One line saying what went wrong; ``problems`` holds a 400's field-named problems."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        problems: list[str] | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.problems = problems or []
        self.retryable = retryable


def check_api_url(url: str) -> str:
    """The API's base URL, normalised (no trailing '/', no default port); ApiError if unusable.

    >>> check_api_url("https://abc.execute-api.eu-west-1.amazonaws.com:443/")
    'https://abc.execute-api.eu-west-1.amazonaws.com'
    """
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    problem = (
        "must start with https:// (or http:// for a local `sweep serve`)"
        if parts.scheme not in ("http", "https")
        else "has no host"
        if not parts.hostname
        else "has an invalid port"
        if port == -1
        else "must be the API's base URL, without ?query or #fragment"
        if parts.query or parts.fragment
        else "must not hold credentials"
        if parts.username or parts.password
        else None
    )
    if problem:
        raise ApiError(ErrorKind.REFUSED, f"--api {url!r}: {problem}")
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[parts.scheme]:
        netloc += f":{port}"  # the signed Host header must equal what urllib sends
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def invoke_resource(base_url: str, method: str, path: str, account: str = "ACCOUNT") -> str:
    """The execute-api ARN (pattern) a caller needs ``execute-api:Invoke`` on.

    >>> invoke_resource("https://a1.execute-api.eu-west-1.amazonaws.com", "POST", "/sweep-run")
    'arn:aws:execute-api:eu-west-1:ACCOUNT:a1/*/POST/sweep-run'
    """
    api_id, region = api_host(base_url) or ("API_ID", "REGION")
    partition = partition_of(region) if region != "REGION" else "aws"
    return f"arn:{partition}:execute-api:{region}:{account}:{api_id}/*/{method}{path}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would resend a signed request to another URL: report it instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ApiClient:
    """POST /sweep-run and GET /sweep-run/RUN_ID of one API; ``signer`` None sends unsigned."""

    def __init__(
        self, base_url: str, signer: Signer | None, *, timeout: float = REQUEST_TIMEOUT_S
    ) -> None:
        self.base_url = check_api_url(base_url)
        self.signer = signer
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def submit(self, body: bytes) -> tuple[int, RunAccepted]:
        """(202 or 200, the answer) for a request body the caller has validated."""
        status, data = self._call("POST", ROUTE, body)
        return status, self._parse(RunAccepted, "POST", ROUTE, status, data)

    def status(self, run_id: str) -> RunStatusBody:
        path = f"{ROUTE}/{quote(run_id, safe='')}"
        status, data = self._call("GET", path, b"")
        return self._parse(RunStatusBody, "GET", path, status, data)

    def _call(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        url = self.base_url + path
        headers = {"Content-Type": "application/json"} if body else {}
        if self.signer is not None:
            headers = self.signer.sign(method, url, headers, body)
        request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", f"sweep/{__version__}")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:  # before URLError, its base class
            answer = exc
        except urllib.error.URLError as exc:
            raise self._network_error(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts and resets mid-read
            raise self._network_error(exc) from None
        try:
            data = answer.read(MAX_ANSWER_BYTES) if answer.fp is not None else b""
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc) from None
        finally:
            answer.close()
        location = answer.headers.get("Location") if answer.headers else None
        raise self._answer_error(method, path, answer.code, location, data)

    def _where(self, method: str, path: str) -> str:
        return f"{method} {self.base_url}{path}"

    def _parse(self, model: type[Model], method: str, path: str, status: int, data: bytes) -> Model:
        body = _json_object(data)
        try:
            if body is None:
                raise ValueError("not a JSON object")
            return _validate(model, body)
        except (ValueError, ValidationError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else None
            why = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else str(exc)
            raise ApiError(
                ErrorKind.REFUSED,
                f"{self._where(method, path)}: HTTP {status} but not a sweep API answer "
                f"({why}); is --api the API's base URL (terraform output api_endpoint)?",
                status=status,
            ) from None

    def _answer_error(
        self, method: str, path: str, status: int, location: str | None, data: bytes
    ) -> ApiError:
        where = f"{self._where(method, path)}: {status} {_reason(status)}"
        body = _json_object(data)
        problem = _as_problem(body)
        text = problem.message if problem else _gateway_message(body, data)
        if 300 <= status < 400:
            return ApiError(
                ErrorKind.REFUSED,
                f"{where}: redirected to {location or '?'}; use that as --api",
                status=status,
            )
        if status == 403:
            return ApiError(
                ErrorKind.REFUSED, self._forbidden(where, method, path, text), status=status
            )
        if status == 429:
            return _unavailable(where, text or "throttled by the API stage", status, True)
        if status >= 500:
            if isinstance(problem, DispatchFailed):
                text = (
                    f"{text}; the run is recorded, {len(problem.undispatched_shards)} "
                    "shard(s) were not enqueued"
                )
            retryable = not (problem and problem.error == "internal_error")
            return _unavailable(where, text, status, retryable)
        if status == 400 and problem and problem.problems:
            return ApiError(
                ErrorKind.INVALID,
                f"{where}: {problem.message}",
                status=status,
                problems=[p.message for p in problem.problems],
            )
        if status == 404 and problem is None:
            text = (
                f"{text or 'no such route'}; --api must be the API's base URL (terraform "
                f"output api_endpoint), without {ROUTE}"
            )
        code = f" ({problem.error})" if problem else ""
        return ApiError(ErrorKind.REFUSED, f"{where}{code}: {text}", status=status)

    def _forbidden(self, where: str, method: str, path: str, text: str) -> str:
        if self.signer is None:
            return (
                f"{where}: {text or 'forbidden'} — the request was sent unsigned (--no-sign "
                "or a local URL); the deployed API needs SigV4-signed requests"
            )
        needed = SUBMIT_PERMISSION if method == "POST" else STATUS_PERMISSION
        account = _ACCOUNT_IN_ARN.search(text)
        resource = invoke_resource(self.base_url, *needed, account[1] if account else "ACCOUNT")
        return (
            f"{where}: {text or 'forbidden'} — the caller needs IAM {INVOKE_ACTION} on "
            f"{resource} (attach the submitter policy: terraform output submitter_policy_arn; "
            "a signature or token error means expired credentials or a wrong --region)"
        )

    def _network_error(self, reason: object) -> ApiError:
        netloc = urlsplit(self.base_url).netloc
        host = urlsplit(self.base_url).hostname
        if isinstance(reason, ConnectionRefusedError):
            text = f"cannot connect to {netloc}: connection refused (server down? --api wrong?)"
        elif isinstance(reason, socket.gaierror):
            text = f"cannot resolve host {host!r} ({reason.strerror}; check --api)"
        elif isinstance(reason, TimeoutError):
            text = f"no answer from {netloc} within {self.timeout:g} s (timeout)"
        elif isinstance(reason, ssl.SSLError):
            text = f"TLS with {host} failed ({getattr(reason, 'reason', None) or reason})"
        else:
            text = f"connection to {netloc} failed ({_describe(reason)})"
        return ApiError(ErrorKind.UNAVAILABLE, text, retryable=True)


def _unavailable(where: str, text: str, status: int, retryable: bool) -> ApiError:
    note = "retryable" if retryable else "not retryable; the service logged it"
    return ApiError(
        ErrorKind.UNAVAILABLE, f"{where}: {text} ({note})", status=status, retryable=retryable
    )


def _reason(status: int) -> str:
    return http.client.responses.get(status, "")


def _describe(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_dispatch_failed(body: dict[str, Any] | None) -> bool:
    return body is not None and body.get("error") == "dispatch_failed"


def _as_problem(body: dict[str, Any] | None) -> Problem | None:
    """The body as the API's Problem (DispatchFailed for a 503), None if it is not one."""
    if body is None:
        return None
    model = DispatchFailed if _is_dispatch_failed(body) else Problem
    try:
        return _validate(model, body)
    except ValidationError:
        return None


def _validate(model: type[Model], body: dict[str, Any]) -> Model:
    """``body`` as ``model``, ignoring fields it does not know: a newer API may add some."""
    return model.model_validate({k: v for k, v in body.items() if k in model.model_fields})


def _gateway_message(body: dict[str, Any] | None, data: bytes) -> str:
    """API Gateway's own {"message": ...} (an IAM denial, throttling), else the text."""
    if body is not None and isinstance(body.get("message"), str):
        return str(body["message"])
    text = data.decode("utf-8", "replace").strip()
    return " ".join(text.split())[:200]
