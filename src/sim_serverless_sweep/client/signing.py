"""SigV4 signing of API requests with botocore's signer, and when not to sign.

botocore is imported only when a request is signed: a `sweep serve` target on this
machine needs no credentials, and nothing here runs at import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from botocore.credentials import Credentials

SERVICE = "execute-api"
# `sweep serve` targets: requests to these hosts are never signed.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# <api_id>.execute-api.<region>.amazonaws.com (.cn in the China regions).
_API_HOST = re.compile(
    r"(?P<api_id>[a-z0-9]+)\.execute-api\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
    r"\.amazonaws\.com(?:\.cn)?"
)


class SigningError(Exception):
    """No credentials or no region for a request that must be signed."""


def is_loopback(url: str) -> bool:
    """True for http(s) URLs on this machine (`sweep serve`): those are sent unsigned.

    >>> is_loopback("http://127.0.0.1:8080"), is_loopback("https://x.example.com")
    (True, False)
    """
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def api_host(url: str) -> tuple[str, str] | None:
    """(api_id, region) of an execute-api default endpoint, else None (a custom domain).

    >>> api_host("https://abc123.execute-api.eu-west-1.amazonaws.com")
    ('abc123', 'eu-west-1')
    """
    match = _API_HOST.fullmatch(urlsplit(url).hostname or "")
    return (match["api_id"], match["region"]) if match else None


def partition_of(region: str) -> str:
    """The ARN partition of a region.

    >>> partition_of("cn-north-1"), partition_of("us-gov-west-1"), partition_of("eu-west-1")
    ('aws-cn', 'aws-us-gov', 'aws')
    """
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class Signer:
    """Signs requests for one region; credentials are re-read (refreshed) for every request."""

    credentials: Credentials
    region: str

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """``headers`` plus X-Amz-Date, X-Amz-Security-Token (with a session token) and
        Authorization; the Host header is signed as the URL's host[:port]."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        SigV4Auth(self.credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}


def region_for(url: str, explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The region to sign for: the URL's own, else --region, else $AWS_REGION /
    $AWS_DEFAULT_REGION; None when none of them says (the profile's region is the caller's
    last resort). A --region that contradicts the URL is a SigningError."""
    parsed = api_host(url)
    if parsed is not None:
        if explicit and explicit != parsed[1]:
            raise SigningError(
                f"--region {explicit}: the API URL is in {parsed[1]}; drop --region "
                "(it is only needed for custom domain names)"
            )
        return parsed[1]
    return explicit or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None


def default_signer(url: str, region: str | None) -> Signer:
    """A Signer with credentials from the standard AWS chain (environment, profile, SSO,
    container or instance role); SigningError saying what to do when there are none."""
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.get_session()
        signing_region = region_for(url, region, os.environ) or session.get_config_variable(
            "region"
        )
        credentials = session.get_credentials()
        if credentials is not None:
            credentials.get_frozen_credentials()  # an expired SSO token fails here, not later
    except botocore.exceptions.BotoCoreError as exc:
        raise SigningError(f"AWS credentials: {exc}") from None
    if not signing_region:
        raise SigningError(
            f"cannot tell the region of {urlsplit(url).hostname}: pass --region REGION "
            "(or set AWS_REGION)"
        )
    if credentials is None:
        raise SigningError(
            "no AWS credentials found to sign the request (environment, AWS_PROFILE, "
            "~/.aws/config, `aws sso login`, or an instance/container role); for a local "
            "`sweep serve` use an http://127.0.0.1 URL or --no-sign"
        )
    return Signer(credentials, str(signing_region))
