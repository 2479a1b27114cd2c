"""`sweep` with `submit` and `status --api` wired as cli/remote.py's docstring proposes.

Once cli/__init__.py wires them itself this adds nothing and runs `sweep` as it is.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sim_serverless_sweep import cli
from sim_serverless_sweep.cli import remote

_build_parser = cli.build_parser


def wired_parser() -> argparse.ArgumentParser:
    parser = _build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if "submit" in sub.choices:
        return parser
    status = sub.choices["status"]
    remote.add_api_options(status)
    local = status.get_default("func")

    def cmd_status(args: argparse.Namespace) -> Any:
        return remote.status_remote(args) if remote.wants_api(args) else local(args)

    status.set_defaults(func=cmd_status)
    remote.add_submit_parser(sub)
    return parser


if __name__ == "__main__":
    cli.build_parser = wired_parser
    sys.exit(cli.main())
