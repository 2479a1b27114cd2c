"""`sweep submit` and `sweep status --api`: the CLI over the HTTP API, deployed or local.

Requests to the deployed API are SigV4-signed with credentials from the standard AWS
chain; `sweep serve` URLs (http://127.0.0.1, localhost, [::1]) and --no-sign are sent
unsigned. A request file is validated here first, with the same messages as `sweep run`,
so a bad request never reaches the network.

Exit codes: 0 accepted / running (without --watch) / done as requested; 2 refused
(invalid request, 4xx, no credentials, bad --api); 3 a shard failed that was not
failure-injected; 4 interrupted (pending shards, runner gone); 5 the API is unavailable
(network error, timeout, throttling, 5xx; the message says whether a retry helps);
130 the watch was stopped by Ctrl-C (the run goes on).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sim_serverless_sweep.cli.support import (
    EXIT_INTERRUPTED,
    EXIT_INTERRUPTED_RUN,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_SHARDS_FAILED,
    UsageError,
    hint,
    positive_float,
    read_input,
)

if TYPE_CHECKING:
    from sim_serverless_sweep.client.api import ApiClient, ApiError
    from sim_serverless_sweep.service.models import RunAccepted, RunStatusBody

EXIT_UNAVAILABLE = 5
DEFAULT_INTERVAL_S = 3.0


def add_api_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """--api, --watch, --interval, --region, --no-sign (for `submit`, and `status`)."""
    parser.add_argument(
        "--api",
        required=required,
        default=None,
        metavar="URL",
        help="the API's base URL: `terraform output -raw api_endpoint`, or a local "
        "`sweep serve` (http://127.0.0.1:PORT, not signed)"
        + ("" if required else "; without it the run is read from --results"),
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="show progress until the run ends (needs --api; Ctrl-C stops watching only)",
    )
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=DEFAULT_INTERVAL_S,
        metavar="S",
        help="seconds between status polls with --watch (default: %(default)s)",
    )
    parser.add_argument(
        "--region",
        default=None,
        help="region to sign for when the URL does not name one (custom domains; "
        "default: $AWS_REGION or the profile's region)",
    )
    parser.add_argument(
        "--no-sign",
        action="store_true",
        help="send unsigned requests (a `sweep serve` on another host)",
    )


def wants_api(args: argparse.Namespace) -> bool:
    """True when `status` must go to the API: --api, or an option only the API path has."""
    return args.api is not None or args.watch or args.region is not None or args.no_sign


def add_submit_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """The `submit` subcommand."""
    submit = sub.add_parser(
        "submit", help="submit a request to the deployed API (or a `sweep serve`)"
    )
    submit.add_argument("request", help="request JSON file, or - for stdin")
    add_api_options(submit, required=True)
    submit.add_argument(
        "--json",
        action="store_true",
        help="print the API's answer as JSON on stdout (with --watch: the final status)",
    )
    submit.set_defaults(func=cmd_submit)
    return submit


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate locally, POST /sweep-run; with --watch, follow the run to its end."""
    from sim_serverless_sweep.client.api import ApiError
    from sim_serverless_sweep.core.contract import ConfigError, Limits, parse_request

    try:
        limits = Limits.from_env(os.environ)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    # The bytes as given go to the API (it parses them again); parsing here first means a
    # bad request gets `sweep run`'s messages and never reaches the network.
    body = read_input(args.request, "request file", limits.max_body_bytes)
    request = parse_request(body, limits)
    client = _client(args)
    retry = hint("submit", args.request, "--api", client.base_url)
    try:
        code, accepted = client.submit(body)
    except ApiError as exc:
        return _failed(exc, retry)
    watch_cmd = hint("status", accepted.run_id, "--api", client.base_url, "--watch")
    if not args.watch:
        if args.json:
            print(accepted.model_dump_json(indent=2))
        else:
            _print_accepted(code, accepted, watch_cmd)
        return EXIT_OK
    if not args.json:
        _print_accepted(code, accepted, None)
    return _watch_and_report(client, args, accepted.run_id, set(request.failure_injection_shards))


def status_remote(args: argparse.Namespace) -> int:
    """`sweep status RUN_ID --api URL [--watch]`: the run's status from the API.

    The API's status does not carry the request, so every failed shard counts as
    unexpected here (exit 3); `submit --watch` knows the request's failure_injection_shards.
    """
    from sim_serverless_sweep.client.api import ApiError
    from sim_serverless_sweep.core.keys import check_run_id

    if args.api is None:
        raise UsageError("--watch, --region and --no-sign need --api URL (the API to ask)")
    if getattr(args, "prefix", None) is not None:
        raise UsageError("--prefix is for local results; the API's prefix is its deployment's")
    check_run_id(args.run_id)
    client = _client(args)
    if args.watch:
        return _watch_and_report(client, args, args.run_id, set())
    try:
        status = client.status(args.run_id)
    except ApiError as exc:
        return _failed(exc, hint("status", args.run_id, "--api", client.base_url))
    return _report_status(status, args, set())


def _client(args: argparse.Namespace) -> ApiClient:
    from sim_serverless_sweep.client.api import ApiClient, ApiError, check_api_url
    from sim_serverless_sweep.client.signing import SigningError, default_signer, is_loopback

    try:
        url = check_api_url(args.api)
        signer = None if args.no_sign or is_loopback(url) else default_signer(url, args.region)
    except (ApiError, SigningError) as exc:
        raise UsageError(str(exc)) from None
    return ApiClient(url, signer)


def _watch_and_report(
    client: ApiClient, args: argparse.Namespace, run_id: str, injected: set[int]
) -> int:
    from rich.console import Console

    from sim_serverless_sweep.client.api import ApiError
    from sim_serverless_sweep.client.watch import watch

    again = hint("status", run_id, "--api", client.base_url, "--watch")
    try:
        status = watch(client, run_id, interval=args.interval, console=Console(stderr=True))
    except KeyboardInterrupt:
        print(
            f"{run_id}: stopped watching (Ctrl-C); the run goes on — watch again: {again}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except ApiError as exc:
        return _failed(exc, again)
    return _report_status(status, args, injected)


def status_exit_code(state: str, failed: Iterable[int], injected: Container[int]) -> int:
    """`sweep status`'s exit code: 4 interrupted, 3 a failed shard that was not
    failure-injected, else 0 (running, or done as requested).

    >>> status_exit_code("failed", [1], {1}), status_exit_code("failed", [1, 2], {1})
    (0, 3)
    """
    if state == "interrupted":
        return EXIT_INTERRUPTED_RUN
    return EXIT_SHARDS_FAILED if any(s not in injected for s in failed) else EXIT_OK


def status_summary(body: Mapping[str, Any]) -> str:
    """`sweep status`'s first line, from a status body (the API's or RunStatus.to_dict())."""
    return (
        f"{body['run_id']} ({body['run_date']}): {body['state']} — {body['succeeded']} "
        f"succeeded, {body['failed']} failed, {body['pending']} pending of "
        f"{body['shard_count']} shards"
    )


def _report_status(status: RunStatusBody, args: argparse.Namespace, injected: set[int]) -> int:
    """Print the status (a line, or JSON) and return its exit code, as `sweep status` does."""
    code = status_exit_code(status.state, status.failed_shards, injected)
    if args.json:
        print(status.model_dump_json(indent=2))
        return code
    print(status_summary(status.model_dump(mode="json")))
    if status.failed_shards:
        notes = [
            f"{s} (failure-injected)" if s in injected else str(s) for s in status.failed_shards
        ]
        print(f"failed shards: {', '.join(notes)}")
        if code == EXIT_OK and not status.pending:
            print("as requested: every failed shard is listed in failure_injection_shards")
        elif not injected:
            print(
                "(the API's status does not carry the request: failed shards that are in its "
                "failure_injection_shards failed on purpose)"
            )
    return code


def _print_accepted(code: int, accepted: RunAccepted, watch_cmd: str | None) -> None:
    what = "new run" if accepted.created else "resubmitted"
    done = accepted.already_succeeded_shards
    print(
        f"{accepted.run_id} ({accepted.run_date}): accepted ({code}, {what}) — "
        f"{accepted.points} points, {accepted.shard_count} shards; "
        f"{len(accepted.dispatched_shards)} dispatched"
        + (f", {len(done)} already succeeded" if done else "")
    )
    if watch_cmd is not None:
        print(f"watch it: {watch_cmd}", file=sys.stderr)


def _failed(exc: ApiError, retry: str) -> int:
    """One line (a 400: every problem, as `sweep run` prints them) and the exit code."""
    from sim_serverless_sweep.client.api import ErrorKind

    if exc.kind is ErrorKind.INVALID:
        # Same lines as cli.main prints for a local RequestError.
        print(
            f"error: invalid request ({len(exc.problems)} problem(s)); nothing was written",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_INVALID
    if exc.kind is ErrorKind.REFUSED:
        raise UsageError(str(exc)) from None
    print(f"error: {exc}" + (f"; retry: {retry}" if exc.retryable else ""), file=sys.stderr)
    return EXIT_UNAVAILABLE
