"""The Lambda zip: built for the host, unzipped, and driven like Lambda would drive it.

build_runtime.py --host installs the project's dependencies for this interpreter and
platform (the real build targets manylinux arm64 / x86_64 for Python 3.12/3.13, which
this machine cannot run). The unzipped tree is then imported by a separate interpreter
that sees only that tree plus what the Lambda Python runtime itself provides (boto3 and
its dependencies), never the venv's site-packages; AWS is a local moto server.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra" / "aws_serverless_sweep"
BUILD_SCRIPT = INFRA / "build_runtime.py"
# Importable packages the Lambda Python runtime ships (not bundled in the zip).
LAMBDA_PROVIDED = ("boto3", "botocore", "s3transfer", "dateutil", "urllib3", "six")
MIB = 1024 * 1024


def _load_build_module() -> Any:
    spec = importlib.util.spec_from_file_location("build_runtime", BUILD_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(zip, unzipped dir, build output) of one host build, shared by this module."""
    work = tmp_path_factory.mktemp("lambda-build")
    out = work / "runtime.zip"
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--host", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    unzipped = work / "unzipped"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(unzipped)
    return out, unzipped, result.stdout


@pytest.fixture(scope="module")
def lambda_provided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder standing in for the runtime's own boto3 (links into this venv)."""
    folder = tmp_path_factory.mktemp("lambda-provided")
    for name in LAMBDA_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (folder / source.name).symlink_to(source)
    return folder


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _aws_env(endpoint: str, home: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "HOME": str(home),
    }


@pytest.fixture(scope="module")
def deployment(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What Terraform would create, in moto: bucket, DLQ, shard queue with redrive."""
    clients = {
        "endpoint_url": moto_endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    s3 = boto3.client("s3", **clients)
    sqs = boto3.client("sqs", **clients)
    s3.create_bucket(Bucket="results")
    dlq_url = sqs.create_queue(QueueName="sweep-shards-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName="sweep-shards",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
            "VisibilityTimeout": "1800",
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return {
        "SHARD_QUEUE_ARN": queue_arn,  # for building the SQS event, not a runtime variable
        "SHARD_QUEUE_URL": queue_url,
        "SWEEP_RESULTS_BUCKET": "results",
        "SWEEP_RESULTS_PREFIX": "sweeps",
        "MAX_SHARDS": "100",
        "MAX_RECEIVE_COUNT": "3",
        "SHARD_DLQ_ARN": dlq_arn,
    }


# Runs in a fresh interpreter (-S: no site-packages) with PYTHONPATH = the unzipped tree
# and the runtime-provided boto3. Cold start included: the first event builds the app.
LAMBDA_SCRIPT = r"""
import io, json, os, sys
unzipped = os.environ["UNZIPPED"]

from sim_serverless_sweep.aws import config
missing = set(config.ENV_VARS) - set(os.environ)
assert not missing, missing
import sim_serverless_sweep.aws.handler as entry
import aws_lambda_powertools, numpy, pyarrow, pydantic, sim_serverless_sweep
for module in (aws_lambda_powertools, numpy, pyarrow, pydantic, sim_serverless_sweep):
    assert module.__file__.startswith(unzipped), module.__file__

# What the writer needs from the trimmed pyarrow: Parquet in memory, datasets, S3 fs.
import pyarrow.dataset, pyarrow.fs, pyarrow.parquet as pq
sink = io.BytesIO()
pq.write_table(pyarrow.table({"x": numpy.arange(3)}), sink)
assert pq.read_table(io.BytesIO(sink.getvalue()))["x"].to_pylist() == [0, 1, 2]
assert pyarrow.fs.S3FileSystem is not None

class Context:
    function_name = "sweep-runtime"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sweep-runtime"
    aws_request_id = "req-1"

def api_event(method, path, body):
    return {
        "version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
        "rawQueryString": "", "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r1", "routeKey": f"{method} {path}", "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0},
        "body": body, "isBase64Encoded": False,
    }

results = {
    "bad_json": entry.handler(api_event("POST", "/sweep-run", "{not json"), Context()),
    "bad_field": entry.handler(
        api_event("POST", "/sweep-run", json.dumps({"run_id": "r1", "seed": "x"})), Context()),
}

# A valid submission, then one shard message through the SQS path: numpy + pyarrow +
# boto3 from the zip/runtime against the (moto) queue and bucket.
import boto3
results["submit"] = entry.handler(
    api_event("POST", "/sweep-run", os.environ["REQUEST_BODY"]), Context())
sqs = boto3.client("sqs")
message = sqs.receive_message(QueueUrl=os.environ["SHARD_QUEUE_URL"], MaxNumberOfMessages=1,
                              AttributeNames=["All"])["Messages"][0]
record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
          "body": message["Body"], "attributes": message["Attributes"],
          "messageAttributes": {}, "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs",
          "eventSourceARN": os.environ["SHARD_QUEUE_ARN"], "awsRegion": "us-east-1"}
results["shard"] = entry.handler({"Records": [record]}, Context())
keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(
    Bucket=os.environ["SWEEP_RESULTS_BUCKET"])["Contents"]]
results["parquet_keys"] = [k for k in keys if k.endswith(".parquet")]
print(json.dumps(results))
"""


def test_build_reports_sizes_within_lambdas_limit(host_build: tuple[Path, Path, str]) -> None:
    out, unzipped, output = host_build
    assert "unzipped:" in output and "zipped:" in output
    unzipped_bytes = sum(f.stat().st_size for f in unzipped.rglob("*") if f.is_file())
    assert unzipped_bytes <= 250 * MIB
    assert f"({out.stat().st_size} bytes" in output
    assert f"({unzipped_bytes} bytes" in output


def test_zip_holds_the_package_and_no_dead_weight(host_build: tuple[Path, Path, str]) -> None:
    _, unzipped, _ = host_build
    assert (unzipped / "sim_serverless_sweep" / "aws" / "handler.py").is_file()
    assert (unzipped / "sim_serverless_sweep" / "service" / "app.py").is_file()
    for name in ("pyarrow", "numpy", "pydantic", "aws_lambda_powertools"):
        assert (unzipped / name).is_dir(), name
    assert not (unzipped / "boto3").exists()  # provided by the Lambda runtime
    assert not list(unzipped.rglob("__pycache__"))
    assert not (unzipped / "pyarrow" / "include").exists()
    assert not (unzipped / "pyarrow" / "tests").exists()
    assert not list((unzipped / "pyarrow").glob("libarrow_flight.so*"))


def test_unzipped_handler_answers_a_bad_request_with_400_and_runs_a_shard(
    host_build: tuple[Path, Path, str],
    lambda_provided: Path,
    deployment: dict[str, str],
    moto_endpoint: str,
    demo_request_body: bytes,
    tmp_path: Path,
) -> None:
    _, unzipped, _ = host_build
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(unzipped), str(lambda_provided)]),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "UNZIPPED": str(unzipped),
        "REQUEST_BODY": json.dumps(
            {**json.loads(demo_request_body), "failure_injection_shards": []}
        ),
        **_aws_env(moto_endpoint, tmp_path),
        **deployment,
    }
    result = subprocess.run(
        [sys.executable, "-S", "-s", "-c", LAMBDA_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    responses = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("bad_json", "bad_field"):
        response = responses[name]
        assert response["statusCode"] == 400, (name, response)
        assert json.loads(response["body"])["error"], (name, response)
    assert responses["submit"]["statusCode"] == 202, responses["submit"]
    assert responses["shard"] == {"batchItemFailures": []}
    assert responses["parquet_keys"], "the shard wrote no Parquet file"
    assert all(k.startswith("sweeps/dataset=") for k in responses["parquet_keys"])


def test_build_fails_above_lambdas_unzipped_limit(capsys: pytest.CaptureFixture[str]) -> None:
    build = _load_build_module()
    assert build.check_size(200 * MIB) == 0
    assert build.check_size(240 * MIB) == 0  # above the target: a warning only
    assert "warning" in capsys.readouterr().err
    assert build.check_size(250 * MIB + 1) == 1
    assert "exceeds" in capsys.readouterr().err


def test_build_takes_the_dependencies_from_pyproject() -> None:
    build = _load_build_module()
    deps = build.project_dependencies()
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in deps}
    assert {"numpy", "pyarrow", "pydantic", "aws-lambda-powertools"} <= names
    assert "boto3" not in names


def test_trim_keeps_the_soname_copy_of_duplicated_libraries(tmp_path: Path) -> None:
    build = _load_build_module()
    lib = tmp_path / "pyarrow"
    (lib / "tests").mkdir(parents=True)
    (lib / "tests" / "test_x.py").write_text("x")
    for name in ("libarrow_python.so", "libarrow_python.so.2600", "libarrow_python.so.2600.1.0"):
        (lib / name).write_bytes(b"elf" * 10)
    (lib / "libarrow.so.2600").write_bytes(b"elf")
    (lib / "lib.pyx").write_text("cython")
    (lib / "__init__.py").write_text("")
    removed = build.trim(tmp_path)
    assert sorted(p.name for p in lib.iterdir()) == [
        "__init__.py",
        "libarrow.so.2600",
        "libarrow_python.so.2600",
    ]
    assert removed == 1 + 60 + 6
