"""Ingress benchmark: POST /sweep-run through the Lambda handler -> manifest -> 1,000 shard
messages on SQS, against moto (server mode, its own process, 127.0.0.1).

Prints wall time, the handler's own CPU time, time waiting on SendMessageBatch, SQS/S3
calls, peak Python memory and message sizes for grids of 10^4 and 10^6 points with 1,000
shards (planning must not grow with points), then the handler module's cold import time
and first-invocation wiring time in fresh interpreters. moto's SendMessageBatch gets
slower as its queue fills (first vs last batch latency), so wall time is mostly moto.

    .venv/bin/python bench/ingress.py [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections import Counter
from typing import Any

import boto3

from sim_serverless_sweep.aws.clients import CLIENT_CONFIG
from sim_serverless_sweep.aws.handler import build_app
from sim_serverless_sweep.core.contract import Limits, parse_request
from sim_serverless_sweep.core.messages import ShardMessage
from sim_serverless_sweep.core.sharding import Plan
from sim_serverless_sweep.service.app import logger

SHARDS = 1_000
MAX_RECEIVE_COUNT = 3
MOTO = (
    "import logging, time; logging.getLogger('werkzeug').setLevel(logging.ERROR); "
    "from moto.server import ThreadedMotoServer; "
    "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False); s.start(); "
    "print(s.get_host_and_port()[1], flush=True); time.sleep(10**9)"
)


def clients(endpoint: str) -> tuple[Any, Any]:
    """S3 and SQS clients on moto, each in its own session (so hooks stay per client)."""
    made = [
        boto3.session.Session().client(
            service,
            config=CLIENT_CONFIG,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        for service in ("s3", "sqs")
    ]
    return made[0], made[1]


def grid(points: int) -> dict[str, list[int | float]]:
    """Dimensions with exactly ``points`` grid points (10^4 or 10^6)."""
    dims: dict[str, list[int | float]] = {
        "num_drivers": list(range(1, 101)),
        "num_riders": list(range(1, 101)),
    }
    if points == 1_000_000:
        dims["commission_rate"] = [round(i * 0.009, 3) for i in range(100)]
    elif points != 10_000:
        raise ValueError("points must be 10_000 or 1_000_000")
    return dims


def make_stack(s3: Any, sqs: Any) -> dict[str, str]:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
    queue = sqs.create_queue(QueueName=f"{name}-shards", Attributes={"RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    return {
        "SHARD_QUEUE_URL": queue,
        "SWEEP_RESULTS_BUCKET": name,
        "SWEEP_RESULTS_PREFIX": "sweeps",
        "MAX_SHARDS": str(SHARDS),
        "MAX_POINTS": "1000000",
        "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
        "SHARD_DLQ_ARN": dlq_arn,
    }


def api_event(body: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /sweep-run",
        "rawPath": "/sweep-run",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "domainName": "bench.local",
            "http": {"method": "POST", "path": "/sweep-run"},
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def plan_only(body: str) -> tuple[float, int]:
    """Seconds and peak bytes to validate, plan and build every shard message (no I/O)."""
    tracemalloc.start()
    began = time.perf_counter()
    request = parse_request(body, Limits(max_shards=SHARDS, max_points=1_000_000))
    plan = Plan.from_request(request)
    for shard in range(plan.shard_count):
        ShardMessage.for_shard(request, time_today(), plan, shard).to_json()
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def time_today() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC).date()


def ingress(endpoint: str, points: int, trace: bool) -> dict[str, Any]:
    """One POST on a fresh stack; with ``trace`` the peak Python memory is measured too
    (tracemalloc slows allocation several-fold, so wall time comes from an untraced run)."""
    s3, sqs = clients(endpoint)
    env = make_stack(s3, sqs)
    calls: Counter[str] = Counter()
    sizes: list[int] = []

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.split(".", 1)[1]] += 1

    def measure(params: dict[str, Any], **_: Any) -> None:
        sizes.extend(len(e["MessageBody"].encode()) for e in params["Entries"])

    latencies: list[float] = []

    def started(context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def finished(context: dict[str, Any], **_: Any) -> None:
        latencies.append(time.perf_counter() - context["bench_started"])

    app = build_app(env, s3=s3, sqs=sqs)
    for client in (s3, sqs):
        client.meta.events.register("after-call", count)
    sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch", measure)
    sqs.meta.events.register("before-call.sqs.SendMessageBatch", started)
    sqs.meta.events.register("after-call.sqs.SendMessageBatch", finished)

    body = json.dumps(
        {"run_id": f"bench-{points}", "dimensions": grid(points), "shard_count": SHARDS, "seed": 1}
    )
    if trace:
        tracemalloc.start()
    began, cpu_began = time.perf_counter(), time.process_time()
    response = app.handle(api_event(body), None)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    assert response["statusCode"] == 202, response
    queued = int(
        sqs.get_queue_attributes(
            QueueUrl=env["SHARD_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
    assert queued == SHARDS, queued
    plan_seconds, plan_peak = plan_only(body)
    return {
        "points": points,
        "shards": SHARDS,
        "wall_s": round(wall, 3),
        "handler_cpu_s": round(cpu, 3),
        "sqs_wait_s": round(sum(latencies), 3),
        "first_batch_ms": round(latencies[0] * 1e3, 1),
        "last_batch_ms": round(latencies[-1] * 1e3, 1),
        "sqs_send_message_batch_calls": calls["sqs.SendMessageBatch"],
        "s3_calls": sum(v for k, v in calls.items() if k.startswith("s3.")),
        "messages_queued": queued,
        "peak_python_mib": round(peak / 2**20, 2),
        "message_bytes_max": max(sizes),
        "message_bytes_total": sum(sizes),
        "plan_only_s": round(plan_seconds, 3),
        "plan_only_peak_mib": round(plan_peak / 2**20, 2),
    }


def cold_import(runs: int = 5) -> dict[str, float]:
    code = (
        "import time; t = time.perf_counter(); import sim_serverless_sweep.aws.handler; "
        "print(time.perf_counter() - t)"
    )
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return {
        "import_min_ms": round(min(times) * 1e3, 1),
        "import_median_ms": round(statistics.median(times) * 1e3, 1),
    }


def cold_wiring(endpoint: str, env: dict[str, str], runs: int = 3) -> dict[str, float]:
    """Import + build_app (boto3 import, two clients, the redrive check) in a fresh process."""
    code = (
        "import os, time; t = time.perf_counter(); "
        "from sim_serverless_sweep.aws.handler import build_app; "
        "build_app(os.environ); print(time.perf_counter() - t)"
    )
    child_env = {
        **env,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": "/usr/bin:/bin",
    }
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                env=child_env,
            ).stdout
        )
        for _ in range(runs)
    ]
    return {"import_and_wiring_median_ms": round(statistics.median(times) * 1e3, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    logger.setLevel("WARNING")  # keep the handler's per-request JSON lines out of the table
    moto = subprocess.Popen([sys.executable, "-c", MOTO], stdout=subprocess.PIPE, text=True)
    try:
        assert moto.stdout is not None
        endpoint = f"http://127.0.0.1:{int(moto.stdout.readline())}"
        rows = []
        for points in (10_000, 1_000_000):
            timed = ingress(endpoint, points, trace=False)
            traced = ingress(endpoint, points, trace=True)
            rows.append({**timed, "peak_python_mib": traced["peak_python_mib"]})
        env = make_stack(*clients(endpoint))
        cold = {**cold_import(), **cold_wiring(endpoint, env)}
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    if args.json:
        print(json.dumps({"ingress": rows, "cold_start": cold}, indent=2))
        return 0
    print(f"ingress: POST /sweep-run -> manifest -> {SHARDS} SQS messages (moto over HTTP)")
    keys = list(rows[0])
    print(
        "  " + "".join(f"{k:>30}" for k in ("metric", *(f"{r['points']:,} points" for r in rows)))
    )
    for key in keys[2:]:
        print("  " + f"{key:>30}" + "".join(f"{r[key]!s:>30}" for r in rows))
    print("handler cold start:")
    for key, value in cold.items():
        print(f"  {key:>30} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
