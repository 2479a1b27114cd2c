# ---------------------------------------------------------------------------------------
# The spec's deploy-time inputs (names are a fixed contract).
# ---------------------------------------------------------------------------------------

variable "aws_region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like an AWS region code, e.g. eu-west-1."
  }
}

variable "project_name" {
  description = "Prefix of every resource name (lower-case letters, digits, hyphens)."
  type        = string
  default     = "sim-sweep"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project_name))
    error_message = "project_name must be 3-32 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "results_bucket_name" {
  description = "Name of the S3 bucket created for the sweep outcomes (globally unique)."
  type        = string

  validation {
    condition = alltrue([
      can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.results_bucket_name)),
      !strcontains(var.results_bucket_name, ".."),
      !can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$", var.results_bucket_name)),
    ])
    error_message = "results_bucket_name must be a valid S3 bucket name (3-63 characters of a-z, 0-9, '.', '-')."
  }
}

variable "results_prefix" {
  description = "S3 key prefix under which the partitioned Parquet datasets and run manifests are written (no leading or trailing '/')."
  type        = string
  default     = "sweeps"

  validation {
    # Same rule as sim_serverless_sweep.core.keys.check_prefix, but non-empty: the runtime's
    # IAM policy is scoped to <prefix>/*. The first segment may not collide with the
    # bucket's other folders (Lambda artifacts, Athena query results).
    condition = alltrue([
      can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.results_prefix)),
      !strcontains(var.results_prefix, "="),
      !contains(split("/", var.results_prefix), "."),
      !contains(split("/", var.results_prefix), ".."),
      !contains(["lambda-artifacts", "athena-results"], split("/", var.results_prefix)[0]),
    ])
    error_message = "results_prefix must be non-empty path segments of A-Z a-z 0-9 . _ - separated by '/', without '=', '..', a leading/trailing '/', or the reserved first segments lambda-artifacts / athena-results."
  }
}

variable "runtime_lambda_zip" {
  description = "Path of the runtime zip built by build.sh: absolute, relative to the working directory, or relative to the repository root (deploy_local.sh passes infra/aws_serverless_sweep/dist/runtime.zip)."
  type        = string

  validation {
    condition     = endswith(var.runtime_lambda_zip, ".zip")
    error_message = "runtime_lambda_zip must be the path of a .zip file (build it with infra/aws_serverless_sweep/build.sh)."
  }
}

variable "max_shards" {
  description = "Upper bound on the number of shards one run may fan out to (MAX_SHARDS)."
  type        = number
  default     = 100

  validation {
    condition     = var.max_shards >= 1 && var.max_shards <= 10000 && floor(var.max_shards) == var.max_shards
    error_message = "max_shards must be an integer between 1 and 10000."
  }
}

variable "athena_database" {
  description = "Glue Data Catalog database (Athena database) holding the sweep tables."
  type        = string
  default     = "sim_sweep"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,127}$", var.athena_database))
    error_message = "athena_database must be lower-case letters, digits and '_', starting with a letter."
  }
}

variable "athena_table" {
  description = "Base name of the Athena tables: one table per dataset, named <athena_table>_<dataset> (e.g. sweep_shard_metrics)."
  type        = string
  default     = "sweep"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,100}$", var.athena_table))
    error_message = "athena_table must be 1-101 characters of lower-case letters, digits and '_', starting with a letter."
  }
}

# ---------------------------------------------------------------------------------------
# Tuning knobs (sensible defaults).
# ---------------------------------------------------------------------------------------

variable "lambda_architecture" {
  description = "Runtime Lambda architecture; build the zip for the same one (build.sh --arch)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_runtime" {
  description = "Lambda Python runtime; build the zip for the same version (build.sh --python-version)."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.12 or python3.13."
  }
}

variable "lambda_memory_mb" {
  description = "Runtime Lambda memory in MB (CPU scales with it)."
  type        = number
  default     = 2048

  validation {
    condition     = var.lambda_memory_mb >= 512 && var.lambda_memory_mb <= 10240
    error_message = "lambda_memory_mb must be between 512 and 10240."
  }
}

variable "lambda_timeout_seconds" {
  description = "Runtime Lambda timeout in seconds (one shard must finish within it). The queue's visibility timeout is 6x this."
  type        = number
  default     = 300

  validation {
    condition     = var.lambda_timeout_seconds >= 30 && var.lambda_timeout_seconds <= 900
    error_message = "lambda_timeout_seconds must be between 30 and 900."
  }
}

variable "max_receive_count" {
  description = "Deliveries of a shard message before it moves to the dead-letter queue (also MAX_RECEIVE_COUNT for the runtime)."
  type        = number
  default     = 3

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be an integer between 1 and 1000."
  }
}

variable "shard_batch_size" {
  description = "Shard messages per invocation from the shard queue (small: one slow shard holds its whole batch)."
  type        = number
  default     = 1

  validation {
    condition     = var.shard_batch_size >= 1 && var.shard_batch_size <= 10
    error_message = "shard_batch_size must be between 1 and 10."
  }
}

variable "max_concurrency" {
  description = "Maximum concurrent runtime invocations fed by the shard queue (event source mapping scaling_config)."
  type        = number
  default     = 20

  validation {
    condition     = var.max_concurrency >= 2 && var.max_concurrency <= 1000
    error_message = "max_concurrency must be between 2 and 1000 (AWS minimum is 2)."
  }
}

variable "log_retention_days" {
  description = "Retention of the Lambda and API Gateway access log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second allowed on the API stage."
  type        = number
  default     = 5
}

variable "api_throttling_burst_limit" {
  description = "Burst requests allowed on the API stage."
  type        = number
  default     = 10
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten (noncurrent) object versions in the results bucket expire."
  type        = number
  default     = 30
}

variable "athena_bytes_scanned_cutoff" {
  description = "Per-query data scan limit of the Athena workgroup, in bytes (cost guard)."
  type        = number
  default     = 10737418240 # 10 GiB
}

variable "results_bucket_force_destroy" {
  description = "Let `terraform destroy` delete the results bucket with every object version in it (set true, apply, then destroy)."
  type        = bool
  default     = false
}
