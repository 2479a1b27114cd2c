#!/usr/bin/env python3
"""Build the runtime Lambda zip: the project's dependencies + its package, trimmed.

Usage (normally through ``build.sh``)::

    python3 infra/aws_serverless_sweep/build_runtime.py                 # arm64, Python 3.12
    python3 infra/aws_serverless_sweep/build_runtime.py --arch x86_64 --python-version 3.13
    python3 infra/aws_serverless_sweep/build_runtime.py --host --out /tmp/host.zip

The dependency list is read from ``pyproject.toml`` (``[project].dependencies``), so it
never drifts from the package. Wheels are chosen with pip's ``--platform`` /
``--only-binary=:all:`` for the Lambda architecture; pyarrow >= 21 ships only
``manylinux_2_28`` wheels, which the python3.12/3.13 runtimes (Amazon Linux 2023) load.
``--host`` builds for the interpreter running this script instead (used by the tests,
which import the unzipped tree).

boto3/botocore are NOT bundled: the Lambda Python runtime provides them, and bundling
botocore would add ~25 MB zipped / ~100 MB unzipped on top of pyarrow + numpy.

Only the standard library is used here. Prints the zipped and unzipped sizes and exits
non-zero if the unzipped size exceeds Lambda's 250 MB limit.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PACKAGE = "sim_serverless_sweep"
MIB = 1024 * 1024
LAMBDA_UNZIPPED_LIMIT = 250 * MIB  # function + layers, unzipped
UNZIPPED_TARGET = 200 * MIB  # our own budget: warn above it
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps -> same inputs, same zip bytes

PLATFORMS = {
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
}

# Never loaded by the runtime: Arrow Flight (no other library links it), pyarrow's C++
# test module, headers, Cython sources and type stubs. (libarrow_substrait must stay:
# pyarrow.lib links it.)
_DROP_FILE_PATTERNS = [
    re.compile(p)
    for p in (
        r"^pyarrow/libarrow_flight\.so.*$",
        r"^pyarrow/libarrow_python_flight\.so.*$",
        r"^pyarrow/_flight\..*\.so$",
        r"^pyarrow/flight\.py$",
        r"^pyarrow/_pyarrow_cpp_tests\..*$",
        r"^pyarrow/.*\.(pyx|pxd|pxi|h|hpp|cc|cpp)$",
        r"^.*\.pyi$",
    )
]
_DROP_DIR_PATTERNS = [
    re.compile(p)
    for p in (
        r"^(numpy|pyarrow)(/.*)?/tests$",
        r"^pyarrow/include$",
        r"^pyarrow/includes$",
        r"^pyarrow/src$",
        r"^numpy/_core/include$",
        r"^numpy/_pyinstaller$",
        r"^.*/__pycache__$",
        r"^__pycache__$",
        r"^bin$",
    )
]
# pip unpacks the wheel's shared-library "symlinks" as full copies: libX.so, libX.so.N and
# libX.so.N.M.P. Extension modules link against the SONAME (libX.so.N); drop the others.
_VERSIONED_LIB = re.compile(r"^(?P<stem>lib[^/]+\.so)(?P<ver>(\.\d+)*)$")


def project_dependencies() -> list[str]:
    """The runtime dependencies declared in pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        deps: list[str] = tomllib.load(handle)["project"]["dependencies"]
    return deps


def pip_install(target: Path, args: argparse.Namespace) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--only-binary=:all:",
    ]
    if not args.host:
        cmd += ["--implementation", "cp", "--python-version", args.python_version]
        for platform in PLATFORMS[args.arch]:
            cmd += ["--platform", platform]
    if args.pip_cache_dir:
        cmd += ["--cache-dir", str(args.pip_cache_dir)]
    cmd += project_dependencies()
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def copy_project(target: Path) -> None:
    """Copy the project's own package (pure Python; its deps are installed above).

    Copying the package directory is what `pip install --no-deps .` would put in the
    zip, minus the dist-info, without a build backend or an in-tree build/ directory.
    """
    shutil.copytree(
        ROOT / "src" / PACKAGE,
        target / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


def trim(target: Path) -> int:
    """Delete what Lambda never loads; returns the number of bytes removed."""
    removed = 0
    for dirpath, dirnames, filenames in os.walk(target, topdown=True):
        rel_dir = Path(dirpath).relative_to(target).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in list(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if any(p.match(rel) for p in _DROP_DIR_PATTERNS):
                path = Path(dirpath) / name
                removed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
                dirnames.remove(name)
        libs: dict[str, list[str]] = {}
        for name in filenames:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            path = Path(dirpath) / name
            if any(p.match(rel) for p in _DROP_FILE_PATTERNS):
                removed += path.stat().st_size
                path.unlink()
                continue
            match = _VERSIONED_LIB.match(name)
            if match and not name.startswith(f"lib{PACKAGE}"):
                libs.setdefault(match["stem"], []).append(name)
        for stem, names in libs.items():
            soname = [n for n in names if re.fullmatch(re.escape(stem) + r"\.\d+", n)]
            if len(names) < 2 or len(soname) != 1:
                continue
            keep = Path(dirpath) / soname[0]
            for name in names:
                other = Path(dirpath) / name
                if name != soname[0] and other.stat().st_size == keep.stat().st_size:
                    removed += other.stat().st_size
                    other.unlink()
    return removed


def tree_size(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def write_zip(source: Path, out: Path) -> None:
    """Deterministic zip: sorted entries, fixed timestamps, world-readable modes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    files = sorted(f for f in source.rglob("*") if f.is_file())
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if os.access(path, os.X_OK) or path.suffix == ".so" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            with path.open("rb") as handle:
                zf.writestr(info, handle.read())
    tmp.replace(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--arch",
        choices=sorted(PLATFORMS),
        default="arm64",
        help="Lambda architecture (default arm64)",
    )
    parser.add_argument(
        "--python-version",
        default="3.12",
        choices=["3.12", "3.13"],
        help="Lambda Python runtime (default 3.12)",
    )
    parser.add_argument(
        "--host",
        action="store_true",
        help="build for this interpreter and platform (tests), not for Lambda",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "dist" / "runtime.zip",
        help="zip to write (default infra/aws_serverless_sweep/dist/runtime.zip)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="unzipped tree (default: next to --out, <name>.build/)",
    )
    parser.add_argument(
        "--pip-cache-dir", type=Path, default=None, help="pip cache directory (default: pip's own)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()
    build_dir: Path = (args.build_dir or out.with_name(out.stem + ".build")).resolve()
    target = "host" if args.host else f"{args.arch}, python{args.python_version}"
    print(f"Building {out} ({target})", flush=True)
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    pip_install(build_dir, args)
    copy_project(build_dir)
    before = tree_size(build_dir)
    removed = trim(build_dir)
    unzipped = tree_size(build_dir)
    write_zip(build_dir, out)
    zipped = out.stat().st_size
    print(
        f"unzipped: {unzipped / MIB:.1f} MiB ({unzipped} bytes; trimmed "
        f"{removed / MIB:.1f} MiB from {before / MIB:.1f} MiB)"
    )
    print(f"zipped:   {zipped / MIB:.1f} MiB ({zipped} bytes) -> {out}")
    return check_size(unzipped)


def check_size(unzipped: int) -> int:
    """Exit status for an unzipped size: 1 above Lambda's limit, else 0 (warns > target)."""
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        print(
            f"error: unzipped size {unzipped / MIB:.1f} MiB exceeds Lambda's "
            f"{LAMBDA_UNZIPPED_LIMIT // MIB} MiB limit",
            file=sys.stderr,
        )
        return 1
    if unzipped > UNZIPPED_TARGET:
        print(
            f"warning: unzipped size is above the {UNZIPPED_TARGET // MIB} MiB target",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
