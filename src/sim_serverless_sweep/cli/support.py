"""What every `sweep` command shares: exit codes, the usage error, inputs and hints."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim_serverless_sweep.core.contract import SweepRequest

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INVALID = 2
EXIT_SHARDS_FAILED = 3
EXIT_INTERRUPTED_RUN = 4  # `sweep status`: shards pending and their runner is gone
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what `cat` gives when its reader exits early
DEFAULT_RESULTS = "sweep-results"
DEFAULT_PREFIX = "sweeps"
STDIN = "-"


class UsageError(Exception):
    """Bad CLI input: printed to stderr as one line, exit 2, nothing written."""


def sweep_command() -> str:
    """The command that starts this CLI again, as the user can type it here.

    'sweep' when that is on PATH and is this program; else the path the user ran
    (e.g. '.venv/bin/sweep'); else 'python -m sim_serverless_sweep' with this Python.
    """
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if Path(argv0).name == "sweep" and Path(argv0).is_file():
        on_path = shutil.which("sweep")
        if on_path and os.path.realpath(on_path) == os.path.realpath(argv0):
            return "sweep"
        return shlex.quote(_shortest_path(argv0))
    return f"{shlex.quote(_shortest_path(sys.executable))} -m sim_serverless_sweep"


def _shortest_path(path: str) -> str:
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive (Windows)
        return absolute
    return relative if len(relative) < len(absolute) else absolute


def hint(*args: str | Path) -> str:
    """A runnable command line: this CLI followed by shell-quoted arguments.

    >>> hint("status", "my run").endswith("status 'my run'")
    True
    """
    return " ".join([sweep_command(), *(_quote(str(a)) for a in args)])


def _quote(arg: str) -> str:
    """shlex.quote, but double quotes where they suffice (SQL hints hold single quotes).

    >>> print(_quote("SELECT 'a'"))
    "SELECT 'a'"
    """
    quoted = shlex.quote(arg)
    if quoted != arg and "'" in arg and not any(c in arg for c in '"$`\\!'):
        return f'"{arg}"'
    return quoted


def read_input(path: str, what: str, limit: int) -> bytes:
    """Bytes of a file, or of stdin for '-'; at most ``limit`` + 1 bytes are read.

    Reading stops there so `/dev/zero` or a huge file fails fast on the size check.
    """
    try:
        if path == STDIN:
            if sys.stdin is None or sys.stdin.isatty():
                raise UsageError(f"{what} '-': pipe the request into stdin (e.g. `cat r.json |`)")
            return sys.stdin.buffer.read(limit + 1)
        with open(path, "rb") as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"{what} {path!r}: cannot read ({exc.strerror or exc})") from None


def load_request(path: str) -> SweepRequest:
    """Parse a request file (or stdin); RequestError / UsageError on bad input."""
    from sim_serverless_sweep.core.contract import ConfigError, Limits, parse_request

    try:
        limits = Limits.from_env(os.environ)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return parse_request(read_input(path, "request file", limits.max_body_bytes), limits)


def existing_results(results: str, prefix: str) -> Path:
    """The results folder, which must exist and hold ``prefix``; UsageError says what is off."""
    from sim_serverless_sweep.core.contract import did_you_mean

    root = Path(results)
    if not root.is_dir():
        siblings = (
            [p.name for p in root.parent.iterdir() if p.is_dir()] if root.parent.is_dir() else []
        )
        what = "is not a folder" if root.exists() else "does not exist"
        raise UsageError(
            f"--results {results}: {what}{did_you_mean(root.name, siblings)} "
            f"(results appear there after `{hint('run', 'REQUEST.json', '--results', results)}`)"
        )
    if prefix and not (root / prefix).is_dir():
        raise UsageError(
            f"--prefix {prefix}: no results under {root / prefix} "
            f"(check --results and --prefix / $SWEEP_RESULTS_PREFIX)"
        )
    return root


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _integer(text)
    if value < 1:
        raise _type_error(f"{value} must be >= 1")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _integer(text)
    if value < 0:
        raise _type_error(f"{value} must be >= 0")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535, or 0 for any free port."""
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise _type_error(f"{value} is out of range; use 1-65535 (0 picks a free port)")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise _type_error(f"{text!r} is not a number") from None
    if not (value > 0 and value < float("inf")):
        raise _type_error(f"{text} must be a finite number > 0")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _type_error(f"{text!r} is not an integer") from None


def _type_error(message: str) -> Exception:
    import argparse

    return argparse.ArgumentTypeError(message)
