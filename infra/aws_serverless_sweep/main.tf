# Wires infrastructure only: the runtime's behaviour lives in the Python package
# (src/sim_serverless_sweep); this configuration gives it a queue, a bucket, an API,
# an IAM role and Athena tables, and passes their names through environment variables.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name = var.project_name

  # Handler of the runtime Lambda (module sim_serverless_sweep.aws.handler, function handler).
  runtime_handler = "sim_serverless_sweep.aws.handler.handler"

  # One value for both the redrive policy and the runtime's MAX_RECEIVE_COUNT.
  max_receive_count = var.max_receive_count

  # AWS recommends a visibility timeout of at least 6x the function timeout.
  shard_visibility_timeout_seconds = 6 * var.lambda_timeout_seconds

  # The zip path as given, or relative to the repository root (deploy_local.sh's form).
  runtime_zip_path = fileexists(var.runtime_lambda_zip) ? var.runtime_lambda_zip : "${path.module}/../../${var.runtime_lambda_zip}"

  results_prefix = var.results_prefix
  # Bucket folders outside the results prefix (the runtime role cannot touch them).
  artifacts_prefix     = "lambda-artifacts"
  athena_output_prefix = "athena-results"

  # Stored datasets (sim_serverless_sweep.core.keys.ALL_DATASETS) -> Glue table names.
  datasets = ["shard_metrics", "trip_data", "snapshot_counts", "shard_outcomes"]
  athena_tables = {
    for dataset in local.datasets : dataset => "${var.athena_table}_${dataset}"
  }
}
