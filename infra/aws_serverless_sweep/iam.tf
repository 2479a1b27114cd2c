# IAM: the runtime role holds exactly the actions the code calls
# (sim_serverless_sweep.aws.permissions.RUNTIME_IAM_ACTIONS, checked by tests/infra),
# each on exactly its resource; people who query get the analytics-read policy.

data "aws_iam_policy_document" "runtime_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "runtime" {
  name               = "${local.name}-runtime"
  description        = "Execution role of the sweep runtime Lambda."
  assume_role_policy = data.aws_iam_policy_document.runtime_assume.json
}

data "aws_iam_policy_document" "runtime" {
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.runtime.arn}:*"]
  }

  # Send shard messages (SendMessageBatch), read the redrive policy at cold start, and
  # let the event source mapping receive and delete.
  statement {
    sid       = "ShardQueue"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.shards.arn]
  }

  # The dead-letter queue is the second event source (failure backstop).
  statement {
    sid       = "DeadLetterQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.shard_dlq.arn]
  }

  # Datasets, outcomes and manifests under the results prefix (HeadObject = s3:GetObject).
  statement {
    sid       = "ResultsObjects"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.results.arn}/${local.results_prefix}/*"]
  }

  # ListObjectsV2, only below the results prefix.
  statement {
    sid       = "ResultsBucketList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.results.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.results_prefix}/*"]
    }
  }
}

resource "aws_iam_role_policy" "runtime" {
  name   = "${local.name}-runtime"
  role   = aws_iam_role.runtime.id
  policy = data.aws_iam_policy_document.runtime.json
}

# Attach to the roles/groups of people who run Athena queries over the results.
data "aws_iam_policy_document" "analytics_read" {
  statement {
    sid = "AthenaWorkgroup"
    actions = [
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetQueryResultsStream",
      "athena:BatchGetQueryExecution",
      "athena:ListQueryExecutions",
      "athena:GetWorkGroup",
      "athena:GetNamedQuery",
      "athena:BatchGetNamedQuery",
      "athena:ListNamedQueries",
    ]
    resources = [aws_athena_workgroup.analytics.arn]
  }

  statement {
    sid = "GlueCatalogRead"
    actions = [
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
    ]
    resources = [
      "arn:${data.aws_partition.current.partition}:glue:${var.aws_region}:${data.aws_caller_identity.current.account_id}:catalog",
      "arn:${data.aws_partition.current.partition}:glue:${var.aws_region}:${data.aws_caller_identity.current.account_id}:database/${aws_glue_catalog_database.sweep.name}",
      "arn:${data.aws_partition.current.partition}:glue:${var.aws_region}:${data.aws_caller_identity.current.account_id}:table/${aws_glue_catalog_database.sweep.name}/*",
    ]
  }

  statement {
    sid       = "ResultsRead"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.results.arn}/${local.results_prefix}/*"]
  }

  statement {
    sid       = "ResultsBucketLocation"
    actions   = ["s3:GetBucketLocation"]
    resources = [aws_s3_bucket.results.arn]
  }

  statement {
    sid       = "ResultsBucketList"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.results.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.results_prefix}/*", "${local.athena_output_prefix}/*"]
    }
  }

  # Athena writes query results with the caller's credentials.
  statement {
    sid = "AthenaQueryResults"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.results.arn}/${local.athena_output_prefix}/*"]
  }
}

resource "aws_iam_policy" "analytics_read" {
  name        = "${local.name}-analytics-read"
  description = "Query the sweep results with Athena: workgroup, Glue catalog read, S3 read on the results prefix."
  policy      = data.aws_iam_policy_document.analytics_read.json
}

# Attach to the users/roles that submit runs and read their status through the API
# (`sweep submit` / `sweep status --api`): exactly the two routes of this API, any stage.
data "aws_iam_policy_document" "submitter" {
  statement {
    sid     = "InvokeSweepRoutes"
    actions = ["execute-api:Invoke"]
    resources = [
      "${aws_apigatewayv2_api.sweep.execution_arn}/*/POST/sweep-run",
      "${aws_apigatewayv2_api.sweep.execution_arn}/*/GET/sweep-run/*",
    ]
  }
}

resource "aws_iam_policy" "submitter" {
  name        = "${local.name}-submitter"
  description = "Submit sweep runs (POST /sweep-run) and read their status (GET /sweep-run/*) through the HTTP API."
  policy      = data.aws_iam_policy_document.submitter.json
}
