output "api_endpoint" {
  description = "Base URL of the HTTP API (POST /sweep-run, GET /sweep-run/{run_id}; SigV4-signed requests)."
  value       = aws_apigatewayv2_api.sweep.api_endpoint
}

output "runtime_function_name" {
  description = "Name of the runtime Lambda."
  value       = aws_lambda_function.runtime.function_name
}

output "shard_queue_url" {
  description = "URL of the shard queue."
  value       = aws_sqs_queue.shards.url
}

output "shard_dlq_url" {
  description = "URL of the shard dead-letter queue."
  value       = aws_sqs_queue.shard_dlq.url
}

output "results_location" {
  description = "Where the datasets are written."
  value       = "s3://${aws_s3_bucket.results.bucket}/${local.results_prefix}/"
}

output "athena_workgroup" {
  description = "Athena workgroup for the saved queries."
  value       = aws_athena_workgroup.analytics.name
}

output "athena_tables" {
  description = "Glue/Athena table per dataset (<athena_database>.<athena_table>_<dataset>)."
  value       = { for dataset, table in local.athena_tables : dataset => "${aws_glue_catalog_database.sweep.name}.${table}" }
}

output "analytics_read_policy_arn" {
  description = "IAM policy to attach to people who query the results."
  value       = aws_iam_policy.analytics_read.arn
}

output "submitter_policy_arn" {
  description = "IAM policy to attach to people who submit runs (sweep submit / sweep status --api): execute-api:Invoke on this API's two routes."
  value       = aws_iam_policy.submitter.arn
}

output "submitter_policy_json" {
  description = "The submitter policy's document, to copy into a policy of your own (e.g. another account's role)."
  value       = data.aws_iam_policy_document.submitter.json
}
