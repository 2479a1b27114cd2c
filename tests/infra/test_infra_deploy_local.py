"""deploy_local.sh against stand-in python3 / aws / terraform executables.

PATH holds only a folder of small stand-ins that record their arguments, so every
external command the script runs is visible (and nothing real is built or deployed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "aws_serverless_sweep" / "deploy_local.sh"
ZIP_REL = "infra/aws_serverless_sweep/dist/runtime.zip"
BASH = shutil.which("bash") or "/bin/bash"

# Each stand-in appends one tab-separated line (its name, then its arguments) to $CALLS,
# then exits with $<NAME>_EXIT (default 0).
STUB = """#!/bin/sh
{{ printf '%s' '{name}'; for arg in "$@"; do printf '\\t%s' "$arg"; done; printf '\\n'
}} >> "$CALLS"
{extra}
exit "${{{var}:-0}}"
"""
STUB_EXTRA = {
    # pip is checked as `python3 -m pip --version`; PIP_EXIT makes only that fail.
    "python3": 'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then exit "${PIP_EXIT:-0}"; fi',
    # sts prints the caller ARN on success, an error on failure.
    "aws": 'if [ "${AWS_EXIT:-0}" = 0 ]; then echo "arn:aws:iam::123456789012:user/dev"; '
    'else echo "Error when retrieving token from sso: Token has expired" >&2; fi',
}


def make_stubs(folder: Path, names: tuple[str, ...]) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text(
            STUB.format(name=name, var=f"{name.upper()}_EXIT", extra=STUB_EXTRA.get(name, ""))
        )
        path.chmod(0o755)


def run(
    tmp_path: Path,
    args: list[str],
    tools: tuple[str, ...] = ("python3", "aws", "terraform"),
    **exits: str,
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    bin_dir = tmp_path / "bin"
    make_stubs(bin_dir, tools)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    env = {"PATH": str(bin_dir), "CALLS": str(calls), "HOME": str(tmp_path), **exits}
    result = subprocess.run(
        [BASH, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    lines = [line.split("\t") for line in calls.read_text().splitlines()]
    return result, lines


@pytest.mark.parametrize("tool", ["python3", "aws", "terraform"])
def test_a_missing_tool_is_named_with_how_to_install_it(tmp_path: Path, tool: str) -> None:
    present = tuple(t for t in ("python3", "aws", "terraform") if t != tool)
    result, calls = run(tmp_path, ["-var", "results_bucket_name=b"], tools=present)
    assert result.returncode != 0
    assert f"{tool}:" in result.stderr and "install" in result.stderr.lower()
    assert not [c for c in calls if c[0] in ("aws", "terraform")], calls


def test_missing_pip_is_named(tmp_path: Path) -> None:
    result, calls = run(tmp_path, [], PIP_EXIT="1")
    assert result.returncode != 0
    assert "pip:" in result.stderr
    assert not [c for c in calls if c[0] == "terraform"]


def test_every_missing_tool_is_listed_at_once(tmp_path: Path) -> None:
    result, _ = run(tmp_path, [], tools=("python3",))
    assert result.returncode != 0
    assert "aws:" in result.stderr and "terraform:" in result.stderr


def test_failing_sts_advises_sso_login_and_builds_nothing(tmp_path: Path) -> None:
    result, calls = run(tmp_path, ["-var", "results_bucket_name=b"], AWS_EXIT="255")
    assert result.returncode != 0
    assert "aws sso login" in result.stderr
    assert ["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"] in calls
    assert not [c for c in calls if c[0] == "python3" and "-m" not in c], "build ran"
    assert not [c for c in calls if c[0] == "terraform"]


def test_happy_path_builds_then_applies_with_the_zip_and_user_args(tmp_path: Path) -> None:
    user_args = ["-var", "results_bucket_name=my-bucket", "-var=max_shards=8", "-auto-approve"]
    result, calls = run(tmp_path, user_args)
    assert result.returncode == 0, result.stderr
    builds = [c for c in calls if c[0] == "python3" and c[1].endswith("build_runtime.py")]
    assert len(builds) == 1
    assert builds[0][1:] == [
        str(SCRIPT.parent / "build_runtime.py"),
        "--arch",
        "arm64",
        "--python-version",
        "3.12",
        "--out",
        str(ROOT / ZIP_REL),
    ]
    terraform = [c for c in calls if c[0] == "terraform"]
    assert [c[1:3] for c in terraform] == [
        ["-chdir=infra/aws_serverless_sweep", "init"],
        ["-chdir=infra/aws_serverless_sweep", "apply"],
    ]
    apply = terraform[1]
    assert apply[3:5] == ["-var", f"runtime_lambda_zip={ZIP_REL}"]
    assert apply[5:] == user_args
    order = [c[0] for c in calls if c[0] != "python3" or c[1] != "-m"]
    assert order == ["aws", "python3", "terraform", "terraform"]
    assert "arn:aws:iam::123456789012:user/dev" in result.stdout


def test_the_build_follows_the_architecture_and_runtime_asked_of_terraform(
    tmp_path: Path,
) -> None:
    result, calls = run(
        tmp_path,
        [
            "-var",
            "lambda_architecture=x86_64",
            "-var=lambda_runtime=python3.13",
            "-var",
            "results_bucket_name=b",
        ],
    )
    assert result.returncode == 0, result.stderr
    (build,) = [c for c in calls if c[0] == "python3" and c[1].endswith("build_runtime.py")]
    assert build[2:6] == ["--arch", "x86_64", "--python-version", "3.13"]


def test_the_build_follows_a_var_file_and_a_later_var_wins(tmp_path: Path) -> None:
    var_file = tmp_path / "prod.tfvars"
    var_file.write_text(
        'results_bucket_name = "b"\n  lambda_architecture = "x86_64"\nlambda_runtime = "python3.13"'
    )
    result, calls = run(tmp_path, [f"-var-file={var_file}"])
    assert result.returncode == 0, result.stderr
    (build,) = [c for c in calls if c[0] == "python3" and c[1].endswith("build_runtime.py")]
    assert build[2:6] == ["--arch", "x86_64", "--python-version", "3.13"]

    result, calls = run(tmp_path, ["-var-file", str(var_file), "-var", "lambda_architecture=arm64"])
    assert result.returncode == 0, result.stderr
    (build,) = [c for c in calls if c[0] == "python3" and c[1].endswith("build_runtime.py")]
    assert build[2:6] == ["--arch", "arm64", "--python-version", "3.13"]


def test_a_failing_build_stops_before_terraform(tmp_path: Path) -> None:
    result, calls = run(tmp_path, ["-var", "results_bucket_name=b"], PYTHON3_EXIT="1")
    assert result.returncode != 0
    assert not [c for c in calls if c[0] == "terraform"]


def test_the_script_is_executable_and_strict() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert os.access(SCRIPT.parent / "build.sh", os.X_OK)
    assert "set -euo pipefail" in SCRIPT.read_text()
