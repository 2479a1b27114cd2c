"""Random argument vectors: every one ends in a documented exit code, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim_serverless_sweep.cli import build_parser, main

# Every subcommand the parser has, so a new command is fuzzed without editing this list.
COMMANDS = list(
    next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
)
FLAGS = [
    "--results",
    "--prefix",
    "--workers",
    "--json",
    "--force",
    "--show",
    "--estimate",
    "--file",
    "--format",
    "--out",
    "--max-wait",
    "--wait-metric",
    "--yes",
    "--host",
    "--api",
    "--watch",
    "--metric",
    "--ignore",
    "--all",
    "--compare",
    "--compare-ignore",
    "--full",
    "--verify",
    "--version",
    "-h",
    "--bogus",
]
# Exit codes a CLI call may end with (cli/__init__.py); 1 would be an internal error.
DOCUMENTED = {0, 2, 3, 4, 5}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with requests good and bad, a finished run, and odd paths."""
    root = tmp_path_factory.mktemp("fuzz")
    good = {
        "run_id": "fz",
        "dimensions": {"horizon_min": [30], "warmup_min": [5], "num_drivers": [3, 4]},
        "shard_count": 2,
        "seed": 3,
    }
    (root / "good.json").write_text(json.dumps(good))
    (root / "other.json").write_text(json.dumps({**good, "seed": 4}))
    (root / "bad.json").write_text('{"run_id": "fz", "dimensions": {}}')
    (root / "junk.json").write_bytes(b"\xff\xfe not json")
    (root / "q.sql").write_text("SELECT count(*) FROM shard_metrics")
    (root / "a-file").write_text("not a folder")
    (root / "folder").mkdir()
    with contextlib.chdir(root):
        assert main(["run", "good.json", "--results", "res", "--json", "--workers", "1"]) == 0
    return root


VALUES = st.sampled_from(
    [
        "good.json",
        "other.json",
        "bad.json",
        "junk.json",
        "missing.json",
        "-",
        "folder",
        "a-file",
        "/dev/null",
        "res",
        "nores",
        "sweep-results",
        "sweeps",
        "../x",
        "a=b",
        "fz",
        "fzz",
        "../../etc",
        "",
        "q.sql",
        "SELECT 1",
        "SELECT nope FROM shard_metrics",
        "SELECT * FROM point_summary",
        "csv",
        "json",
        "table",
        "mean",
        "p95",
        "platform_revenue",
        "commission_rate",
        "0",
        "1",
        "2",
        "-1",
        "70000",
        "1e9",
        "nan",
        "inf",
        "abc",
        "out",
        "http://127.0.0.1:9",  # a closed port: the network-error path
        "ftp://x",
    ]
)
REQUESTS = st.sampled_from(["good.json", "other.json", "bad.json", "junk.json", "-", "folder"])
RUN_IDS = st.sampled_from(["fz", "fzz", "../x", ""])
POSITIONAL = {
    "plan": REQUESTS,
    "run": REQUESTS,
    "submit": REQUESTS,
    "status": RUN_IDS,
    "report": RUN_IDS,
    "delete": RUN_IDS,
    "compare": RUN_IDS,
    "verify": RUN_IDS,
    "query": st.sampled_from(["SELECT 1", "SELECT nope", "SELECT * FROM point_summary"]),
}
NOISE = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
OPTION = st.tuples(st.sampled_from(FLAGS), VALUES)
SWITCH = st.sampled_from(["--json", "--force", "--estimate", "--yes"])


@st.composite
def argv_vectors(draw: st.DrawFn) -> list[str]:
    # Mostly well-formed shapes (command, positional, options) so the commands themselves
    # run, with some noise so argparse's own paths are covered too.
    command = draw(st.sampled_from(COMMANDS)) if draw(st.integers(0, 9)) else draw(NOISE)
    argv = [command]
    if command in POSITIONAL and draw(st.integers(0, 4)):
        argv.append(draw(POSITIONAL[command]))
    elif draw(st.booleans()):
        argv.append(draw(VALUES))
    for part in draw(st.lists(OPTION.map(list) | SWITCH.map(lambda s: [s]), max_size=4)):
        argv += part
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(1, len(argv))), draw(NOISE | st.sampled_from(FLAGS)))
    if command == "serve":
        argv += ["--port", "70000"]  # never actually serve: the fuzz must end
    if command in ("run", "report", "delete") and "--results" not in argv:
        argv += ["--results", "res"]  # keep writes inside the workspace
    return argv


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argv=argv_vectors(), stdin=st.sampled_from([b"", b"{}", b"not json", None]))
def test_no_argument_vector_ends_in_a_traceback(
    workspace: Path, argv: list[str], stdin: bytes | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh copy of the finished run each time: a fuzzed `delete --yes` must not
    # change what the next example sees.
    shutil.rmtree(workspace / "res-copy", ignore_errors=True)
    shutil.copytree(workspace / "res", workspace / "res-copy")
    argv = ["res-copy" if a == "res" else a for a in argv]
    stdin_file = io.TextIOWrapper(io.BytesIO(stdin or b"")) if stdin is not None else None
    monkeypatch.setattr(sys, "stdin", stdin_file)
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(workspace),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code: int | str | None = main(argv)
        except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
            code = exc.code
    text = err.getvalue()
    event(f"{argv[0] if argv[0] in COMMANDS else 'other'} -> exit {code}")
    assert "Traceback" not in text, (argv, text)
    assert "internal error" not in text, (argv, text)
    assert code in DOCUMENTED, (argv, code, text)
    if code == 2:
        assert text.strip(), (argv, "exit 2 without a message")
