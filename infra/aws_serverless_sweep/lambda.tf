# The one runtime Lambda: API requests (submit, status) and shard messages (shard queue
# and dead-letter queue) all reach sim_serverless_sweep.aws.handler.handler.

resource "aws_cloudwatch_log_group" "runtime" {
  #checkov:skip=CKV_AWS_158:Logs hold no secrets; the CloudWatch Logs default encryption applies and a customer-managed KMS key is not worth its cost here.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days) for a sandbox; raise log_retention_days where a year is required.
  name              = "/aws/lambda/${local.name}-runtime"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "runtime" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway and by SQS event source mappings; failed shard messages already go to the SQS dead-letter queue (a function DLQ applies only to async invokes).
  #checkov:skip=CKV_AWS_117:Talks only to S3, SQS and CloudWatch public endpoints; a VPC would add NAT or endpoints for no isolation gain.
  #checkov:skip=CKV_AWS_173:The environment holds only queue URL, bucket, prefix and limits, no secrets; the default AWS-managed key encrypts it at rest.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile; the zip is built and uploaded by the deployer from this repository.
  #checkov:skip=CKV_AWS_115:Concurrency is bounded by the event source mappings' maximum_concurrency and the API stage throttling; reserved concurrency would take from the account pool.
  #checkov:skip=CKV_AWS_50:X-Ray tracing would need xray:* actions the runtime never calls (its role holds exactly the actions the code uses); Powertools logs carry the request ids.
  function_name = "${local.name}-runtime"
  description   = "Parameter sweep runtime: API submit/status and SQS shard execution."
  role          = aws_iam_role.runtime.arn

  runtime       = var.lambda_runtime
  architectures = [var.lambda_architecture]
  handler       = local.runtime_handler
  memory_size   = var.lambda_memory_mb
  timeout       = var.lambda_timeout_seconds

  s3_bucket         = aws_s3_object.runtime_zip.bucket
  s3_key            = aws_s3_object.runtime_zip.key
  s3_object_version = aws_s3_object.runtime_zip.version_id
  source_code_hash  = filebase64sha256(local.runtime_zip_path)

  environment {
    variables = {
      SHARD_QUEUE_URL      = aws_sqs_queue.shards.url
      SWEEP_RESULTS_BUCKET = aws_s3_bucket.results.bucket
      SWEEP_RESULTS_PREFIX = local.results_prefix
      MAX_SHARDS           = tostring(var.max_shards)
      MAX_RECEIVE_COUNT    = tostring(local.max_receive_count)
      SHARD_DLQ_ARN        = aws_sqs_queue.shard_dlq.arn
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.runtime.name
  }

  depends_on = [
    aws_cloudwatch_log_group.runtime,
    aws_iam_role_policy.runtime,
  ]
}

# Shard queue -> runtime: one small batch at a time, failed items reported individually.
resource "aws_lambda_event_source_mapping" "shards" {
  event_source_arn                   = aws_sqs_queue.shards.arn
  function_name                      = aws_lambda_function.runtime.arn
  batch_size                         = var.shard_batch_size
  maximum_batching_window_in_seconds = 0
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.max_concurrency
  }
}

# Dead-letter queue -> runtime: the backstop that records a failure outcome for shards
# whose attempts never reached the runtime's own failure path (timeouts, out-of-memory).
resource "aws_lambda_event_source_mapping" "shard_dlq" {
  event_source_arn                   = aws_sqs_queue.shard_dlq.arn
  function_name                      = aws_lambda_function.runtime.arn
  batch_size                         = var.shard_batch_size
  maximum_batching_window_in_seconds = 0
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = 2
  }
}
