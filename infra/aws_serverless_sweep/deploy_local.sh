#!/usr/bin/env bash
# Build the runtime zip and deploy the stack with Terraform, from a laptop.
#
#   ./infra/aws_serverless_sweep/deploy_local.sh -var "results_bucket_name=<bucket>" [terraform apply args...]
#
# Steps: preflight (python3, pip, aws, terraform) -> AWS session check
# (aws sts get-caller-identity) -> build.sh -> terraform init -> terraform apply with
# -var runtime_lambda_zip=infra/aws_serverless_sweep/dist/runtime.zip and every argument
# given here (so -var, -var-file, -auto-approve ... pass through; paths in -var-file are
# relative to infra/aws_serverless_sweep). If the arguments set lambda_architecture or
# lambda_runtime, the zip is built for that architecture / Python version.
# Prints no secrets: only the caller's ARN from STS.
set -euo pipefail

readonly ZIP_REL="infra/aws_serverless_sweep/dist/runtime.zip"

script="${BASH_SOURCE[0]}"
if [[ "${script}" == */* ]]; then script_dir="${script%/*}"; else script_dir="."; fi
here="$(cd -- "${script_dir}" && pwd)"
root="$(cd -- "${here}/../.." && pwd)"

say() { printf '==> %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,12p' "${BASH_SOURCE[0]}" 2>/dev/null || true
  exit 0
fi

# --- preflight -----------------------------------------------------------------------
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
if ! have python3; then
  missing+=("python3: install Python 3.11+ (https://www.python.org/downloads/ or your OS package manager)")
elif ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=("pip: run 'python3 -m ensurepip --upgrade' or install your OS's python3-pip package")
fi
if ! have aws; then
  missing+=("aws: install AWS CLI v2 (https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)")
fi
if ! have terraform; then
  missing+=("terraform: install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)")
fi
if ((${#missing[@]} > 0)); then
  printf 'error: missing required tool(s):\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

# --- AWS session ---------------------------------------------------------------------
say "Checking the AWS session (aws sts get-caller-identity)"
if ! caller_arn="$(aws sts get-caller-identity --query Arn --output text)"; then
  printf 'error: no valid AWS session. Log in first:\n\n    aws sso login   # add --profile NAME if you use a named profile\n\nthen re-run this script.\n' >&2
  exit 1
fi
say "Deploying as ${caller_arn}"

# --- build ---------------------------------------------------------------------------
# Build for the architecture / runtime the user asks Terraform for (defaults: arm64, 3.12),
# read in Terraform's precedence order: terraform.tfvars, *.auto.tfvars, then -var-file and
# -var in command-line order (later wins). File paths are relative to this folder, as for
# `terraform -chdir`.
arch="arm64"
python_version="3.12"
pick_var() {
  case "$1" in
    lambda_architecture=*) arch="${1#lambda_architecture=}" ;;
    lambda_runtime=python*) python_version="${1#lambda_runtime=python}" ;;
  esac
}
pick_file() {
  local file="$1" line
  [[ "${file}" = /* ]] || file="${here}/${file}"
  [[ -f "${file}" ]] || return 0
  local arch_re='^[[:space:]]*lambda_architecture[[:space:]]*=[[:space:]]*"([^"]*)"'
  local runtime_re='^[[:space:]]*lambda_runtime[[:space:]]*=[[:space:]]*"python([^"]*)"'
  while IFS= read -r line || [[ -n "${line}" ]]; do
    if [[ "${line}" =~ ${arch_re} ]]; then arch="${BASH_REMATCH[1]}"; fi
    if [[ "${line}" =~ ${runtime_re} ]]; then python_version="${BASH_REMATCH[1]}"; fi
  done <"${file}"
}
pick_file terraform.tfvars
for auto in "${here}"/*.auto.tfvars; do
  if [[ -e "${auto}" ]]; then pick_file "${auto}"; fi
done
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -var) if ((i + 1 < ${#args[@]})); then pick_var "${args[i + 1]}"; fi ;;
    -var=*) pick_var "${args[i]#-var=}" ;;
    -var-file) if ((i + 1 < ${#args[@]})); then pick_file "${args[i + 1]}"; fi ;;
    -var-file=*) pick_file "${args[i]#-var-file=}" ;;
  esac
done

say "Building ${ZIP_REL} (${arch}, python${python_version})"
"${BASH}" "${here}/build.sh" --arch "${arch}" --python-version "${python_version}" \
  --out "${root}/${ZIP_REL}"

# --- terraform -----------------------------------------------------------------------
cd -- "${root}"
say "terraform init"
terraform -chdir=infra/aws_serverless_sweep init -input=false
say "terraform apply"
terraform -chdir=infra/aws_serverless_sweep apply -var "runtime_lambda_zip=${ZIP_REL}" "$@"
