"""Static checks of the Terraform in infra/aws_serverless_sweep against the code.

Terraform cannot download providers here, so the configuration is parsed with python-hcl2
and every fact that must agree with the Python runtime is taken from the code itself:
handler, environment variables, IAM actions, dataset names, key layout, Arrow schemas.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from sim_serverless_sweep.aws import config as runtime_config
from sim_serverless_sweep.aws.permissions import RUNTIME_IAM_ACTIONS
from sim_serverless_sweep.core import keys
from sim_serverless_sweep.core.schemas import DATASET_SCHEMAS
from sim_serverless_sweep.service import app

INFRA = Path(__file__).resolve().parents[2] / "infra" / "aws_serverless_sweep"

SPEC_VARIABLES = (
    "aws_region",
    "project_name",
    "results_bucket_name",
    "results_prefix",
    "runtime_lambda_zip",
    "max_shards",
    "athena_database",
    "athena_table",
)

# Logging is done by the Lambda service on the function's behalf, not by an SDK call in
# the code; the runtime role gets exactly these on its own log group.
LOG_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})

# How the runtime policy names each resource kind of RUNTIME_IAM_ACTIONS.
RESOURCE_KINDS = {
    "${aws_sqs_queue.shards.arn}": "shard_queue",
    "${aws_sqs_queue.shard_dlq.arn}": "dead_letter_queue",
    "${aws_s3_bucket.results.arn}/${local.results_prefix}/*": "results_objects",
    "${aws_s3_bucket.results.arn}": "results_bucket",
    "${aws_cloudwatch_log_group.runtime.arn}:*": "log_group",
}


def ref(expression: str) -> str:
    """'${local.x}' -> 'local.x' (a single whole-string interpolation)."""
    match = re.fullmatch(r"\$\{(.+)\}", expression)
    assert match, f"{expression!r} is not a single interpolation"
    return match[1]


def resolve_local(tf: Any, expression: str) -> Any:
    name = ref(expression)
    assert name.startswith("local."), expression
    return tf.locals[name.removeprefix("local.")]


def athena_type(arrow_type: pa.DataType) -> str:
    """The spec's Arrow -> Athena/Glue type mapping."""
    simple = {
        pa.string(): "string",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float64(): "double",
        pa.bool_(): "boolean",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    raise AssertionError(f"no Athena mapping for {arrow_type}")


# --- variables -----------------------------------------------------------------------


def test_spec_variables_exist_with_descriptions(tf: Any) -> None:
    missing = [name for name in SPEC_VARIABLES if name not in tf.variables]
    assert not missing, f"spec variables missing: {missing}"
    undocumented = [n for n, body in tf.variables.items() if not body.get("description")]
    assert not undocumented, f"variables without a description: {undocumented}"


def test_only_deploy_specific_variables_lack_defaults(tf: Any) -> None:
    required = sorted(n for n, body in tf.variables.items() if "default" not in body)
    assert required == ["results_bucket_name", "runtime_lambda_zip"]


def test_tfvars_example_sets_the_spec_variables_and_no_credentials() -> None:
    text = (INFRA / "terraform.tfvars.example").read_text()
    for name in SPEC_VARIABLES:
        assert re.search(rf"^{name}\s*=", text, re.MULTILINE), name
    assert not re.search(r"(?i)(secret|access_key|password|token)\s*=", text)
    for path in INFRA.glob("*.tf"):
        assert not re.search(r"(?i)\b(access_key|secret_key)\s*=", path.read_text()), path


def test_default_results_prefix_is_a_valid_key_prefix(tf: Any) -> None:
    default = tf.variables["results_prefix"]["default"]
    assert keys.check_prefix(default) == default != ""


# --- Lambda ----------------------------------------------------------------------------


def test_handler_string_resolves_to_the_runtime_function(tf: Any) -> None:
    function = tf.resource("aws_lambda_function", "runtime")
    handler = resolve_local(tf, function["handler"])
    module_name, _, attribute = handler.rpartition(".")
    module = importlib.import_module(module_name)
    target = getattr(module, attribute)
    assert callable(target)
    assert list(inspect.signature(target).parameters)[:2] == ["event", "context"]


def test_lambda_runtime_and_architecture(tf: Any) -> None:
    function = tf.resource("aws_lambda_function", "runtime")
    assert function["runtime"] == "${var.lambda_runtime}"
    assert tf.variables["lambda_runtime"]["default"] in ("python3.12", "python3.13")
    assert function["architectures"] == ["${var.lambda_architecture}"]
    assert tf.variables["lambda_architecture"]["default"] == "arm64"
    # > 50 MB zipped: deployed from S3, never uploaded directly.
    assert "filename" not in function
    assert function["s3_key"] == "${aws_s3_object.runtime_zip.key}"
    assert function["logging_config"][0]["log_group"] == "${aws_cloudwatch_log_group.runtime.name}"


def test_lambda_environment_equals_what_the_code_reads(tf: Any) -> None:
    function = tf.resource("aws_lambda_function", "runtime")
    variables = function["environment"][0]["variables"]
    assert set(variables) == set(runtime_config.ENV_VARS)
    assert variables[runtime_config.SHARD_QUEUE_URL] == "${aws_sqs_queue.shards.url}"
    assert variables[runtime_config.SWEEP_RESULTS_BUCKET] == "${aws_s3_bucket.results.bucket}"
    assert variables[runtime_config.SWEEP_RESULTS_PREFIX] == "${local.results_prefix}"
    assert "var.max_shards" in variables[runtime_config.MAX_SHARDS]
    # The DLQ the runtime recognises is the one the shard queue redrives to.
    assert variables[runtime_config.SHARD_DLQ_ARN] == "${aws_sqs_queue.shard_dlq.arn}"


def test_redrive_max_receive_count_is_the_runtimes_max_receive_count(tf: Any) -> None:
    function = tf.resource("aws_lambda_function", "runtime")
    env = function["environment"][0]["variables"][runtime_config.MAX_RECEIVE_COUNT]
    assert env == "${tostring(local.max_receive_count)}"
    redrive = tf.resource("aws_sqs_queue", "shards")["redrive_policy"]
    assert re.search(r"maxReceiveCount\s*=\s*local\.max_receive_count\b", redrive), redrive
    assert re.search(r"deadLetterTargetArn\s*=\s*aws_sqs_queue\.shard_dlq\.arn\b", redrive)
    assert tf.locals["max_receive_count"] == "${var.max_receive_count}"


def test_visibility_timeout_is_at_least_six_times_the_function_timeout(tf: Any) -> None:
    function = tf.resource("aws_lambda_function", "runtime")
    assert function["timeout"] == "${var.lambda_timeout_seconds}"
    visibility = tf.locals["shard_visibility_timeout_seconds"]
    match = re.fullmatch(r"\$\{(\d+) \* var\.lambda_timeout_seconds\}", visibility)
    assert match and int(match[1]) >= 6, visibility
    for queue in ("shards", "shard_dlq"):  # both feed the function
        body = tf.resource("aws_sqs_queue", queue)
        assert body["visibility_timeout_seconds"] == "${local.shard_visibility_timeout_seconds}"
        assert body["sqs_managed_sse_enabled"] is True
    # Even the largest allowed timeout stays within SQS's 12-hour visibility maximum.
    assert int(match[1]) * 900 <= 43_200
    assert "var.lambda_timeout_seconds <= 900" in str(tf.variables["lambda_timeout_seconds"])


def test_dlq_keeps_messages_longer_than_the_shard_queue(tf: Any) -> None:
    shards = tf.resource("aws_sqs_queue", "shards")["message_retention_seconds"]
    dlq = tf.resource("aws_sqs_queue", "shard_dlq")["message_retention_seconds"]
    assert dlq > shards


@pytest.mark.parametrize("mapping", ["shards", "shard_dlq"])
def test_event_source_mappings_report_batch_item_failures(tf: Any, mapping: str) -> None:
    body = tf.resource("aws_lambda_event_source_mapping", mapping)
    queue = "shards" if mapping == "shards" else "shard_dlq"
    assert body["event_source_arn"] == f"${{aws_sqs_queue.{queue}.arn}}"
    assert body["function_name"] == "${aws_lambda_function.runtime.arn}"
    assert body["function_response_types"] == ["ReportBatchItemFailures"]
    assert "maximum_concurrency" in body["scaling_config"][0]
    assert tf.variables["shard_batch_size"]["default"] <= 10


# --- API Gateway -----------------------------------------------------------------------


def test_routes_are_iam_authorised_and_proxied_with_payload_2(tf: Any) -> None:
    routes = tf.resources["aws_apigatewayv2_route"]
    # The paths the runtime's resolver serves (GET <ROUTE>/<run_id> in Powertools syntax).
    assert app.ROUTE == "/sweep-run"
    assert {body["route_key"] for body in routes.values()} == {
        f"POST {app.ROUTE}",
        f"GET {app.ROUTE}/{{run_id}}",
    }
    for body in routes.values():
        assert body["authorization_type"] == "AWS_IAM"
        assert body["target"] == "integrations/${aws_apigatewayv2_integration.runtime.id}"
    integration = tf.resource("aws_apigatewayv2_integration", "runtime")
    assert integration["payload_format_version"] == "2.0"
    assert integration["integration_type"] == "AWS_PROXY"
    assert integration["integration_uri"] == "${aws_lambda_function.runtime.invoke_arn}"
    stage = tf.resource("aws_apigatewayv2_stage", "default")
    settings = stage["default_route_settings"][0]
    assert {"throttling_rate_limit", "throttling_burst_limit"} <= set(settings)
    assert "$context.requestId" in stage["access_log_settings"][0]["format"]
    permissions = {b["source_arn"] for b in tf.resources["aws_lambda_permission"].values()}
    assert permissions == {
        "${aws_apigatewayv2_api.sweep.execution_arn}/*/POST/sweep-run",
        "${aws_apigatewayv2_api.sweep.execution_arn}/*/GET/sweep-run/*",
    }


# --- S3 --------------------------------------------------------------------------------


def test_results_bucket_is_hardened(tf: Any) -> None:
    block = tf.resource("aws_s3_bucket_public_access_block", "results")
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[flag] is True, flag
    ownership = tf.resource("aws_s3_bucket_ownership_controls", "results")
    assert ownership["rule"][0]["object_ownership"] == "BucketOwnerEnforced"
    versioning = tf.resource("aws_s3_bucket_versioning", "results")
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    rules = tf.resource("aws_s3_bucket_lifecycle_configuration", "results")["rule"]
    assert any("noncurrent_version_expiration" in r for r in rules)
    assert any("abort_incomplete_multipart_upload" in r for r in rules)
    sse = tf.resource("aws_s3_bucket_server_side_encryption_configuration", "results")
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"]
    statement = tf.data["aws_iam_policy_document"]["results_bucket"]["statement"][0]
    assert statement["effect"] == "Deny"
    assert statement["condition"][0]["variable"] == "aws:SecureTransport"
    assert statement["condition"][0]["values"] == ["false"]


# --- IAM -------------------------------------------------------------------------------


def test_runtime_role_has_exactly_the_actions_the_code_calls(tf: Any) -> None:
    expected = {kind: set(actions) for kind, actions in RUNTIME_IAM_ACTIONS.items()}
    expected.setdefault("log_group", set(LOG_ACTIONS))
    granted: dict[str, set[str]] = {}
    for statement in tf.data["aws_iam_policy_document"]["runtime"]["statement"]:
        assert statement.get("effect", "Allow") == "Allow"
        assert "not_actions" not in statement and "not_resources" not in statement
        for resource in statement["resources"]:
            assert resource in RESOURCE_KINDS, f"unexpected resource {resource}"
            granted.setdefault(RESOURCE_KINDS[resource], set()).update(statement["actions"])
    assert granted == expected
    for actions in granted.values():
        assert not any("*" in action for action in actions)


def test_runtime_bucket_listing_is_limited_to_the_prefix(tf: Any) -> None:
    statements = tf.data["aws_iam_policy_document"]["runtime"]["statement"]
    (listing,) = [s for s in statements if s["resources"] == ["${aws_s3_bucket.results.arn}"]]
    assert listing["condition"] == [
        {"test": "StringLike", "variable": "s3:prefix", "values": ["${local.results_prefix}/*"]}
    ]
    assert tf.locals["results_prefix"] == "${var.results_prefix}"
    role = tf.resource("aws_iam_role_policy", "runtime")
    assert role["policy"] == "${data.aws_iam_policy_document.runtime.json}"
    assert tf.resource("aws_lambda_function", "runtime")["role"] == "${aws_iam_role.runtime.arn}"


def test_analytics_read_policy_reads_only(tf: Any) -> None:
    statements = tf.data["aws_iam_policy_document"]["analytics_read"]["statement"]
    actions = {a for s in statements for a in s["actions"]}
    assert {"athena:StartQueryExecution", "glue:GetTable", "s3:GetObject"} <= actions
    writes = {a for a in actions if a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List"))}
    # Writes only where Athena stores query results, never on the datasets.
    for statement in statements:
        if writes & set(statement["actions"]):
            assert statement["resources"] == [
                "${aws_s3_bucket.results.arn}/${local.athena_output_prefix}/*"
            ]
    assert not any(a.startswith(("glue:Create", "glue:Update", "glue:Delete")) for a in actions)
    for statement in statements:
        assert all(r != "*" for r in statement["resources"])


# --- Glue / Athena --------------------------------------------------------------------


def test_one_glue_table_per_dataset_named_from_athena_table(tf: Any) -> None:
    assert tf.locals["datasets"] == list(keys.ALL_DATASETS) == list(DATASET_SCHEMAS)
    assert tf.locals["athena_tables"] == (
        '${{for dataset in local.datasets : dataset => "${var.athena_table}_${dataset}"}}'
    )
    table = tf.resource("aws_glue_catalog_table", "dataset")
    assert table["for_each"] == "${toset(local.datasets)}"
    assert table["name"] == "${local.athena_tables[each.key]}"
    assert tf.resource("aws_glue_catalog_database", "sweep")["name"] == "${var.athena_database}"


def test_glue_table_location_follows_the_key_layout(tf: Any) -> None:
    table = tf.resource("aws_glue_catalog_table", "dataset")
    descriptor = table["storage_descriptor"][0]
    assert descriptor["ser_de_info"][0]["serialization_library"] == (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert "Parquet" in descriptor["input_format"]
    bucket = "s3://${aws_s3_bucket.results.bucket}/"
    for dataset in keys.ALL_DATASETS:
        location = descriptor["location"].replace("${each.key}", dataset)
        assert location == bucket + keys.dataset_root("${local.results_prefix}", dataset)
        template = table["parameters"]["storage.location.template"].replace("${each.key}", dataset)
        # $${run_date} is Terraform's escape for Athena's literal ${run_date}.
        assert template == location + "run_date=$${run_date}/"


def test_partition_projection_is_on_run_date_only(tf: Any) -> None:
    table = tf.resource("aws_glue_catalog_table", "dataset")
    assert table["partition_keys"] == [
        {"name": "run_date", "type": "date", "comment": table["partition_keys"][0]["comment"]}
    ]
    parameters = table["parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.run_date.type"] == "date"
    assert parameters["projection.run_date.format"] == "yyyy-MM-dd"
    projected = {
        k.split(".")[1]
        for k in parameters
        if k.startswith("projection.") and k != "projection.enabled"
    }
    assert projected == {"run_date"}
    # A partition key can never also be a file column.
    for schema in DATASET_SCHEMAS.values():
        assert "run_date" not in schema.names


def test_glue_columns_equal_the_writers_arrow_schemas(tf: Any) -> None:
    table = tf.resource("aws_glue_catalog_table", "dataset")
    dynamic = table["storage_descriptor"][0]["dynamic"][0]["columns"]
    assert dynamic["for_each"] == "${local.glue_columns[each.key]}"
    assert dynamic["content"][0]["name"] == "${columns.value.name}"
    assert dynamic["content"][0]["type"] == "${columns.value.type}"
    columns = tf.locals["glue_columns"]
    assert set(columns) == set(DATASET_SCHEMAS)
    for dataset, schema in DATASET_SCHEMAS.items():
        expected = [(f.name, athena_type(f.type)) for f in schema]
        actual = [(c["name"], c["type"]) for c in columns[dataset]]
        assert actual == expected, (
            f"{dataset}: glue_columns.tf differs from the Arrow schema; run "
            ".venv/bin/python infra/aws_serverless_sweep/gen_glue_columns.py"
        )


def test_athena_workgroup_encrypts_and_enforces_results(tf: Any) -> None:
    workgroup = tf.resource("aws_athena_workgroup", "analytics")["configuration"][0]
    assert workgroup["enforce_workgroup_configuration"] is True
    result = workgroup["result_configuration"][0]
    assert result["encryption_configuration"][0]["encryption_option"] in ("SSE_S3", "SSE_KMS")
    assert result["output_location"].endswith("/${local.athena_output_prefix}/")


def _named_queries(tf: Any) -> dict[str, str]:
    queries = {}
    for name, body in tf.resources["aws_athena_named_query"].items():
        text = body["query"]
        match = re.fullmatch(r"<<-SQL\n(.*)\n\s*SQL", text, re.DOTALL)
        queries[name] = match[1] if match else text
    return queries


def test_saved_queries_are_valid_trino_over_real_columns(tf: Any) -> None:
    queries = _named_queries(tf)
    assert {"revenue_wait_by_commission", "failures_by_run"} <= set(queries)
    for name, text in queries.items():
        used = set(re.findall(r'local\.athena_tables\["(\w+)"\]', text))
        assert used and used <= set(DATASET_SCHEMAS), name
        if used - {"shard_outcomes"}:
            # Data files count only for shards with a success outcome (written last).
            assert "shard_outcomes" in used and "status = 'success'" in text, name
            assert not re.search(r"\bsum\(\w*\.?(platform_revenue|gross_bookings)\)", text), (
                f"{name}: sums of per-simulation totals grow with replications"
            )
        sql = re.sub(r"\$\{aws_glue_catalog_database\.sweep\.name\}", "sim_sweep", text)
        sql = re.sub(r'\$\{local\.athena_tables\["(\w+)"\]\}', r"sweep_\1", sql)
        assert "${" not in sql, name
        tree = sqlglot.parse_one(sql, read="trino")
        aliases = {a.alias for a in tree.find_all(exp.Alias)}
        columns = {c.name for c in tree.find_all(exp.Column)} - aliases
        known = {"run_date"}.union(*(DATASET_SCHEMAS[d].names for d in used))
        assert columns <= known, f"{name}: unknown columns {columns - known}"
        assert "run_date" in columns, f"{name}: filter on the projected partition"


def test_terraform_fmt_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "terraform is not installed: formatting not checked (checkov and the "
            "hcl2 tests above still run)"
        )
    result = subprocess.run(
        [terraform, "fmt", "-check", "-diff", str(INFRA)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
