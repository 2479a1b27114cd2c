# Shard queue (one message per shard) and its dead-letter queue.

resource "aws_sqs_queue" "shard_dlq" {
  name                       = "${local.name}-shards-dlq"
  message_retention_seconds  = 1209600 # 14 days: longer than the shard queue's
  visibility_timeout_seconds = local.shard_visibility_timeout_seconds
  sqs_managed_sse_enabled    = true
}

resource "aws_sqs_queue" "shards" {
  name                       = "${local.name}-shards"
  message_retention_seconds  = 345600 # 4 days
  visibility_timeout_seconds = local.shard_visibility_timeout_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.shard_dlq.arn
    maxReceiveCount     = local.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "shard_dlq" {
  queue_url = aws_sqs_queue.shard_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.shards.arn]
  })
}

data "aws_iam_policy_document" "queues_tls_only" {
  for_each = {
    shards    = aws_sqs_queue.shards.arn
    shard_dlq = aws_sqs_queue.shard_dlq.arn
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "shards" {
  queue_url = aws_sqs_queue.shards.id
  policy    = data.aws_iam_policy_document.queues_tls_only["shards"].json
}

resource "aws_sqs_queue_policy" "shard_dlq" {
  queue_url = aws_sqs_queue.shard_dlq.id
  policy    = data.aws_iam_policy_document.queues_tls_only["shard_dlq"].json
}
