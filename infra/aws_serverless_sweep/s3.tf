# Results bucket: Parquet datasets and run manifests under var.results_prefix, the Lambda
# zip under lambda-artifacts/, Athena query results under athena-results/.

resource "aws_s3_bucket" "results" {
  #checkov:skip=CKV_AWS_18:Server access logging needs a second log bucket; CloudTrail data events are the audit path for this sandbox deployment.
  #checkov:skip=CKV_AWS_144:Cross-region replication is out of scope: results are reproducible from the deterministic sweep.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications; Athena reads the bucket directly.
  bucket        = var.results_bucket_name
  force_destroy = var.results_bucket_force_destroy
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    # SSE-KMS with the AWS managed key (aws/s3): principals of this account that may use
    # S3 may use it through S3, so no kms:* grants are needed; the bucket key keeps KMS
    # request costs negligible.
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "results" {
  bucket = aws_s3_bucket.results.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id

  rule {
    id     = "expire-noncurrent-and-abort-multipart"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "expire-athena-results"
    status = "Enabled"

    filter {
      prefix = "${local.athena_output_prefix}/"
    }

    expiration {
      days = 30
    }
  }

  depends_on = [aws_s3_bucket_versioning.results]
}

data "aws_iam_policy_document" "results_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.results.arn,
      "${aws_s3_bucket.results.arn}/*",
    ]

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

resource "aws_s3_bucket_policy" "results" {
  bucket = aws_s3_bucket.results.id
  policy = data.aws_iam_policy_document.results_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.results]
}

# The runtime zip is larger than Lambda's 50 MB direct-upload limit: it goes through S3.
resource "aws_s3_object" "runtime_zip" {
  bucket      = aws_s3_bucket.results.id
  key         = "${local.artifacts_prefix}/runtime.zip"
  source      = local.runtime_zip_path
  source_hash = filemd5(local.runtime_zip_path)

  depends_on = [
    aws_s3_bucket_server_side_encryption_configuration.results,
    aws_s3_bucket_versioning.results,
  ]
}
