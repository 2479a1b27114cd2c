"""checkov over infra/aws_serverless_sweep: 0 failed checks, every skip with a reason.

checkov pins libraries that clash with the project's (it installs bc-python-hcl2, which
overwrites the `hcl2` module, and an old boto3), so it lives in its own venv,
.venv-checkov/ at the repository root (override with $CHECKOV_VENV). The first run
creates it with `python3 -m venv` + `pip install checkov`; if that fails the test fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra" / "aws_serverless_sweep"
CHECKOV_VENV = Path(os.environ.get("CHECKOV_VENV", ROOT / ".venv-checkov"))
CHECKOV_REQUIREMENT = "checkov>=3.2,<4"
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")


def _ensure_checkov() -> Path:
    """The checkov executable of the dedicated venv, installed on first use."""
    checkov = CHECKOV_VENV / "bin" / "checkov"
    stamp = CHECKOV_VENV / ".checkov-installed"
    CHECKOV_VENV.parent.mkdir(parents=True, exist_ok=True)
    # Outside the repository (nothing to git-ignore), one lock per venv path.
    digest = hashlib.sha256(str(CHECKOV_VENV.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"checkov-venv-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent pytest runs install once
        if stamp.is_file() and checkov.is_file():
            return checkov
        # The base interpreter, not this venv's: checkov must not see the project venv.
        python = getattr(sys, "_base_executable", None) or sys.executable
        steps = [
            [python, "-m", "venv", "--clear", str(CHECKOV_VENV)],
            [
                str(CHECKOV_VENV / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                CHECKOV_REQUIREMENT,
            ],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, check=False, timeout=1200)
            if result.returncode != 0:
                pytest.fail(
                    f"cannot install checkov ({' '.join(step)}):\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                )
        stamp.write_text(CHECKOV_REQUIREMENT + "\n")
    return checkov


@pytest.fixture(scope="session")
def checkov_report() -> dict[str, Any]:
    checkov = _ensure_checkov()
    result = subprocess.run(
        [
            str(checkov),
            "-d",
            str(INFRA),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov gave no JSON report (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    if isinstance(report, list):  # one report per framework
        (report,) = [r for r in report if r.get("check_type") == "terraform"]
    report["exit_code"] = result.returncode
    return report


def test_checkov_has_no_failed_checks_and_parsed_everything(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [
        (c["check_id"], c["resource"], c["file_path"])
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == [] and summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0, checkov_report["results"].get("parsing_errors")
    assert summary["passed"] > 50 and summary["resource_count"] > 30  # really scanned
    assert checkov_report["exit_code"] == 0


def test_every_skip_carries_a_reason(checkov_report: dict[str, Any]) -> None:
    skipped = checkov_report["results"]["skipped_checks"]
    assert skipped, "expected the documented skips to be reported"
    for check in skipped:
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(comment.strip()) >= 20, (check["check_id"], check["resource"], comment)


def test_skip_comments_in_the_tf_files_all_have_reasons() -> None:
    seen = 0
    for path in sorted(INFRA.glob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "checkov:skip" not in line:
                continue
            match = SKIP_COMMENT.search(line.strip())
            assert match and match[2] and len(match[2].strip()) >= 20, f"{path.name}:{number}"
            seen += 1
    assert seen > 0
