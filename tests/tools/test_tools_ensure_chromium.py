"""tools/ensure_chromium.sh: what `make test` does about the browser on a fresh machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "ensure_chromium.sh"


def fake_bin(folder: Path, **programs: str) -> Path:
    """A PATH folder holding only the given shell programs (name -> body)."""
    folder.mkdir()
    for name, body in programs.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return folder


def run_script(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPT)],
        env={"PATH": str(path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_found_browser_is_used_as_is(tmp_path: Path) -> None:
    path = fake_bin(tmp_path / "bin", chromium="exit 0", id="echo 1000")
    proc = run_script(path, SWEEP_REQUIRE_BROWSER="1")
    assert proc.returncode == 0 and proc.stdout == proc.stderr == ""


def test_non_root_without_a_browser_explains_and_goes_on(tmp_path: Path) -> None:
    path = fake_bin(tmp_path / "bin", id="echo 1000", **{"apt-get": "exit 0"})
    proc = run_script(path)
    assert proc.returncode == 0
    assert "apt-get install chromium" in proc.stderr
    assert "reported as skipped" in proc.stderr


def test_ci_makes_a_missing_browser_an_error(tmp_path: Path) -> None:
    path = fake_bin(tmp_path / "bin", id="echo 1000")
    proc = run_script(path, SWEEP_REQUIRE_BROWSER="1")
    assert proc.returncode == 1
    assert "SWEEP_REQUIRE_BROWSER=1" in proc.stderr


@pytest.mark.parametrize(("apt_status", "code"), [(0, 0), (100, 0)])
def test_root_installs_with_apt_get(tmp_path: Path, apt_status: int, code: int) -> None:
    log = tmp_path / "apt.log"
    apt = f'echo "$@" >> {log}\nexit {apt_status}'
    path = fake_bin(tmp_path / "bin", id="echo 0", **{"apt-get": apt})
    proc = run_script(path)
    assert proc.returncode == code
    calls = log.read_text().splitlines()
    assert calls[0] == "update -qq"
    if apt_status == 0:
        assert calls[1] == "install -y -qq --no-install-recommends chromium"
    else:
        assert "could not install chromium" in proc.stderr
