"""Every CLI path ends in a one-line error and a documented exit code, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import pty
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sim_serverless_sweep import __version__
from sim_serverless_sweep.cli import build_parser, main
from sim_serverless_sweep.cli.support import sweep_command

RunCli = Callable[..., "subprocess.CompletedProcess[str]"]
WriteRequest = Callable[..., Path]


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"sweep {__version__} (sim-serverless-sweep)"


def test_subcommands_come_in_workflow_order() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [
        "schema",
        "plan",
        "run",
        "submit",
        "status",
        "verify",
        "runs",
        "query",
        "report",
        "compare",
        "delete",
        "serve",
    ]


def test_every_argument_has_help_and_shows_its_default() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert all(choice.help for choice in sub._choices_actions)
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"sweep {name} {action.option_strings or action.dest}"
            assert action.help, f"{where} has no help text"
            if action.option_strings and action.default not in (None, False):
                assert "default" in action.help, f"{where} does not say its default"


def test_importing_the_cli_leaves_the_environment_alone() -> None:
    code = (
        "import os\n"
        "before = dict(os.environ)\n"
        "import sim_serverless_sweep.cli\n"
        "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def test_broken_pipe_exits_141_without_a_traceback() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sim_serverless_sweep", "schema"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == ""


def test_serve_on_a_port_in_use_is_a_one_line_error(tmp_path: Path, run_cli: RunCli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", "--port", str(port), "--results", str(tmp_path), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: --port {port}: address already in use")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_serve_port_out_of_range(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--port", port])
    assert caught.value.code == 2
    assert "argument --port" in capsys.readouterr().err


def test_serve_on_an_address_it_cannot_bind(tmp_path: Path, run_cli: RunCli) -> None:
    proc = run_cli("serve", "--host", "192.0.2.1", "--port", "0", "--results", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --host 192.0.2.1: cannot listen there")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("missing.json", "cannot read (No such file or directory)"),
        (".", "cannot read (Is a directory)"),
        ("/dev/zero", "body is 65537 bytes; the limit is 65536 bytes"),
    ],
)
def test_unreadable_request_file(
    path: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    assert main(["run", path, "--results", str(results)]) == 2
    assert words in capsys.readouterr().err
    assert not results.exists()


def test_request_from_stdin(tmp_path: Path, run_cli: RunCli, write_request: WriteRequest) -> None:
    body = write_request(tmp_path).read_bytes()
    plan = run_cli("plan", "-", "--json", stdin=body)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["points"] == 2
    run = run_cli("run", "-", "--results", str(tmp_path / "r"), "--json", stdin=body)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["succeeded"] == 2


def test_request_from_a_terminal_stdin_is_refused_not_waited_for(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sim_serverless_sweep", "plan", "-"],
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 2
    assert "pipe the request into stdin" in proc.stderr


@pytest.mark.parametrize("command", ["query", "status", "report", "runs", "delete"])
def test_a_missing_results_folder_is_an_error_with_a_suggestion(
    command: str, tiny_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tiny_results.parent / "resluts"
    args = {
        "query": ["query", "SELECT 1"],
        "status": ["status", "tiny"],
        "report": ["report", "tiny", "--out", str(tiny_results.parent / "rep")],
        "runs": ["runs"],
        "delete": ["delete", "tiny", "--yes"],
    }[command]
    assert main([*args, "--results", str(typo)]) == 2
    err = capsys.readouterr().err
    assert f"--results {typo}: does not exist; did you mean 'results'?" in err
    assert len(err.strip().splitlines()) == 1
    assert not typo.exists() and not (tiny_results.parent / "rep").exists()


def test_query_of_an_empty_results_folder_is_an_error_not_zero_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "SELECT count(*) FROM shard_metrics", "--results", str(tmp_path)]) == 2
    assert "no results under" in capsys.readouterr().err


def test_unknown_run_id_suggests_the_close_one(
    tiny_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "tiyn", "--results", str(tiny_results)]) == 2
    err = capsys.readouterr().err
    assert "no run 'tiyn'" in err and "did you mean 'tiny'?" in err
    assert "runs --results" in err


def test_run_id_conflict_says_what_differs(
    tiny_results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_request: WriteRequest,
) -> None:
    changed = write_request(tmp_path, "changed.json", seed=12)
    assert main(["run", str(changed), "--results", str(tiny_results)]) == 2
    err = capsys.readouterr().err
    assert "already exists with a different request (seed: stored 11, this request 12)" in err


def test_runs_lists_every_run_newest_first(
    tiny_results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_request: WriteRequest,
) -> None:
    second = write_request(tmp_path, "second.json", run_id="second", failure_injection_shards=[0])
    time.sleep(0.01)  # accepted_at orders runs
    assert main(["run", str(second), "--results", str(tiny_results), "--json"]) == 0
    capsys.readouterr()
    assert main(["runs", "--results", str(tiny_results), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["state"], r["points"], r["failed"]) for r in rows] == [
        ("second", "failed", 2, 1),
        ("tiny", "succeeded", 2, 0),
    ]
    assert all(r["run_date"] == rows[0]["run_date"] for r in rows)


def test_delete_removes_that_run_and_nothing_else(
    tiny_results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_request: WriteRequest,
) -> None:
    other = write_request(tmp_path, "other.json", run_id="tiny2")
    assert main(["run", str(other), "--results", str(tiny_results), "--json"]) == 0
    before = files_under(tiny_results)
    keep = {k: v for k, v in before.items() if "run_id=tiny/" not in k}
    assert len(keep) < len(before)
    capsys.readouterr()
    assert main(["delete", "tiny", "--results", str(tiny_results), "--yes"]) == 0
    assert f"{len(before) - len(keep)} file(s)" in capsys.readouterr().out
    assert files_under(tiny_results) == keep
    assert not list(tiny_results.rglob("run_id=tiny"))  # no empty folders left either
    assert main(["status", "tiny", "--results", str(tiny_results)]) == 2
    assert main(["status", "tiny2", "--results", str(tiny_results)]) == 0


def test_delete_without_a_terminal_needs_yes(tiny_results: Path, run_cli: RunCli) -> None:
    before = files_under(tiny_results)
    proc = run_cli("delete", "tiny", "--results", str(tiny_results))
    assert proc.returncode == 2 and "pass --yes" in proc.stderr
    assert files_under(tiny_results) == before


@pytest.mark.parametrize(("answer", "deleted"), [(b"n\n", False), (b"y\n", True)])
def test_delete_asks_on_a_terminal(answer: bytes, deleted: bool, tiny_results: Path) -> None:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim_serverless_sweep", "delete", "tiny", "--results", "results"],
        cwd=tiny_results.parent,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(terminal)
    os.write(controller, answer)
    _, err = proc.communicate(timeout=60)
    os.close(controller)
    assert "delete run tiny (succeeded, 2 points" in err
    assert proc.returncode == (0 if deleted else 2), err
    assert (not (tiny_results / "sweeps/manifests/run_id=tiny").exists()) == deleted


def test_hints_name_the_command_the_user_can_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "venv" / "bin" / "sweep"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert sweep_command() == "venv/bin/sweep"  # not on PATH: the path that works here
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    assert sweep_command() == "sweep"
    monkeypatch.setattr(sys, "argv", ["-c"])
    assert sweep_command().endswith(" -m sim_serverless_sweep")


def test_run_prints_runnable_next_steps(
    tmp_path: Path, run_cli: RunCli, write_request: WriteRequest
) -> None:
    proc = run_cli("run", str(write_request(tmp_path)), "--results", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    hints = [line for line in proc.stderr.splitlines() if line.startswith(("query it:", "report:"))]
    assert len(hints) == 2
    for line in hints:  # each hint runs as printed, from where the user is
        command = line.split(":", 1)[1].strip()
        shown = subprocess.run(
            command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert shown.returncode == 0, (command, shown.stderr)
    assert (tmp_path / "reports" / "tiny" / "report.html").is_file()


@pytest.mark.parametrize("damage", [b"garbage\n", b"PAR1" + b"\0" * 40])
@pytest.mark.parametrize("command", ["query", "report"])
def test_a_damaged_file_is_named_not_a_traceback(
    damage: bytes, command: str, tiny_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = next(tiny_results.rglob("dataset=shard_metrics/**/part-0.parquet"))
    victim.write_bytes(damage)
    args = {
        "query": ["query", "SELECT count(*) FROM shard_metrics"],
        "report": ["report", "tiny", "--out", str(tiny_results.parent / "rep")],
    }[command]
    assert main([*args, "--results", str(tiny_results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: damaged results file {victim} ("), err
    assert len(err.strip().splitlines()) == 1


def test_verify_finds_flipped_bytes_and_a_resume_repairs_them(
    tiny_results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_request: WriteRequest,
) -> None:
    victim = next(tiny_results.rglob("dataset=trip_data/**/part-0.parquet"))
    good = victim.read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # same size: only the checksum can tell
    victim.write_bytes(bytes(flipped))
    capsys.readouterr()
    assert main(["verify", "tiny", "--results", str(tiny_results)]) == 0  # sizes only
    assert main(["verify", "tiny", "--results", str(tiny_results), "--full"]) == 3
    out = capsys.readouterr().out
    assert "damaged" in out and f"checksum: {victim.relative_to(tiny_results).as_posix()}" in out

    request = write_request(tmp_path)
    assert main(["run", str(request), "--results", str(tiny_results), "--verify"]) == 0
    assert "1 shard(s) failed verification (full) and run again" in capsys.readouterr().err
    assert victim.read_bytes() == good
    assert main(["verify", "tiny", "--results", str(tiny_results), "--full"]) == 0


def test_verify_reports_a_missing_file(
    tiny_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = next(tiny_results.rglob("dataset=snapshot_counts/**/part-0.parquet"))
    victim.unlink()
    assert main(["verify", "tiny", "--results", str(tiny_results), "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and len(report["damaged_shards"]) == 1
    missing = [m for s in report["shards"] for m in s["missing"]]
    assert missing == [victim.relative_to(tiny_results).as_posix()]
