#!/usr/bin/env bash
# Build infra/aws_serverless_sweep/dist/runtime.zip for the runtime Lambda (arm64,
# Python 3.12 by default). Arguments go to build_runtime.py, e.g.
#   ./infra/aws_serverless_sweep/build.sh --arch x86_64 --python-version 3.13
# Prints the zipped / unzipped sizes; fails if the unzipped tree exceeds 250 MB.
set -euo pipefail
script="${BASH_SOURCE[0]}"
if [[ "${script}" == */* ]]; then script_dir="${script%/*}"; else script_dir="."; fi
here="$(cd -- "${script_dir}" && pwd)"
exec "${PYTHON:-python3}" "${here}/build_runtime.py" "$@"
