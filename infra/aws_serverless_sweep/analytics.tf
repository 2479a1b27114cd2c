# Athena over the results: one Glue table per dataset, named <athena_table>_<dataset>,
# each located at s3://<bucket>/<results_prefix>/dataset=<dataset>/.
#
# Only run_date is a (projected) partition: run_id, shard_id and point_index are columns
# inside every file, and a column cannot also be a partition key. Projecting
# shard_id x point_index would multiply into a partition space too large to enumerate.
# The folders below run_date=... (run_id=/status=/shard_id=/point_index=) are read as
# plain subfolders of the partition. (status is a column of shard_outcomes; in the data
# datasets the folder is always status=success.)

resource "aws_glue_catalog_database" "sweep" {
  name        = var.athena_database
  description = "Parameter sweep results (${var.project_name})."
}

resource "aws_glue_catalog_table" "dataset" {
  for_each = toset(local.datasets)

  name          = local.athena_tables[each.key]
  database_name = aws_glue_catalog_database.sweep.name
  table_type    = "EXTERNAL_TABLE"
  description   = "Dataset ${each.key}: s3://${var.results_bucket_name}/${local.results_prefix}/dataset=${each.key}/"

  parameters = {
    EXTERNAL                            = "TRUE"
    classification                      = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "2025-01-01,NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
    "storage.location.template"         = "s3://${aws_s3_bucket.results.bucket}/${local.results_prefix}/dataset=${each.key}/run_date=$${run_date}/"
  }

  partition_keys {
    name    = "run_date"
    type    = "date"
    comment = "UTC date the run was submitted (key folder run_date=yyyy-mm-dd)."
  }

  storage_descriptor {
    location      = "s3://${aws_s3_bucket.results.bucket}/${local.results_prefix}/dataset=${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      name                  = "parquet"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = local.glue_columns[each.key]

      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}

resource "aws_athena_workgroup" "analytics" {
  name          = "${local.name}-analytics"
  description   = "Queries over the parameter sweep results."
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${aws_s3_bucket.results.bucket}/${local.athena_output_prefix}/"

      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }
}

resource "aws_athena_named_query" "revenue_wait_by_commission" {
  name        = "${local.name}-revenue-and-wait-by-commission"
  description = "Per-simulation platform revenue, bookings, rider wait and completion by commission rate, per run; successful shards only (last 30 days)."
  workgroup   = aws_athena_workgroup.analytics.id
  database    = aws_glue_catalog_database.sweep.name
  # Means per simulation (a point x replicate row), never sums: totals would grow with
  # the replication count and with every other swept dimension.
  query = <<-SQL
    SELECT
      m.run_id,
      m.commission_rate,
      count(DISTINCT m.point_index) AS points,
      count(*) AS simulations,
      avg(m.platform_revenue) AS platform_revenue_per_simulation,
      avg(m.gross_bookings) AS gross_bookings_per_simulation,
      avg(m.wait_mean_min) AS wait_mean_min,
      avg(m.wait_p95_min) AS wait_p95_min,
      CAST(sum(m.served) AS DOUBLE) / NULLIF(sum(m.served + m.cancelled), 0) AS completion_rate,
      avg(m.driver_net_hourly_earnings) AS driver_net_hourly_earnings
    FROM "${aws_glue_catalog_database.sweep.name}"."${local.athena_tables["shard_metrics"]}" AS m
    WHERE m.run_date >= current_date - INTERVAL '30' DAY
      AND EXISTS (
        SELECT 1
        FROM "${aws_glue_catalog_database.sweep.name}"."${local.athena_tables["shard_outcomes"]}" AS o
        WHERE o.run_date = m.run_date AND o.run_id = m.run_id AND o.shard_id = m.shard_id
          AND o.status = 'success'
      )
    GROUP BY m.run_id, m.commission_rate
    ORDER BY m.run_id, m.commission_rate
  SQL
}

resource "aws_athena_named_query" "wait_distribution_by_commission" {
  name        = "${local.name}-trip-wait-distribution-by-commission"
  description = "Trip-level wait percentiles of completed trips and cancellation share by commission rate, per run (measurement window, successful shards, last 30 days)."
  workgroup   = aws_athena_workgroup.analytics.id
  database    = aws_glue_catalog_database.sweep.name
  # Waits of completed trips only (a cancelled trip's wait_min is its time to cancel),
  # as in the per-point metrics; revenue as a mean per simulation.
  query = <<-SQL
    SELECT
      t.run_id,
      t.commission_rate,
      count(*) AS requests,
      approx_percentile(CASE WHEN t.trip_status = 'completed' THEN t.wait_min END, 0.5) AS wait_p50_min,
      approx_percentile(CASE WHEN t.trip_status = 'completed' THEN t.wait_min END, 0.95) AS wait_p95_min,
      CAST(count_if(t.trip_status = 'cancelled') AS DOUBLE) / NULLIF(count(*), 0) AS cancelled_share,
      sum(t.commission) / count(DISTINCT CAST(t.point_index AS varchar) || '/' || CAST(t.replicate AS varchar)) AS platform_revenue_per_simulation
    FROM "${aws_glue_catalog_database.sweep.name}"."${local.athena_tables["trip_data"]}" AS t
    WHERE t.run_date >= current_date - INTERVAL '30' DAY
      AND t.in_window
      AND EXISTS (
        SELECT 1
        FROM "${aws_glue_catalog_database.sweep.name}"."${local.athena_tables["shard_outcomes"]}" AS o
        WHERE o.run_date = t.run_date AND o.run_id = t.run_id AND o.shard_id = t.shard_id
          AND o.status = 'success'
      )
    GROUP BY t.run_id, t.commission_rate
    ORDER BY t.run_id, t.commission_rate
  SQL
}

resource "aws_athena_named_query" "failures_by_run" {
  name        = "${local.name}-failures-by-run"
  description = "Shard outcomes per run: succeeded and failed shards, attempts, error types (last 30 days)."
  workgroup   = aws_athena_workgroup.analytics.id
  database    = aws_glue_catalog_database.sweep.name
  query       = <<-SQL
    SELECT
      run_id,
      count(*) AS shards_with_outcome,
      count_if(status = 'success') AS succeeded,
      count_if(status = 'failure') AS failed,
      max(attempts) AS max_attempts,
      array_agg(DISTINCT error_type) FILTER (WHERE error_type IS NOT NULL) AS error_types,
      min(started_at) AS first_started_at,
      max(finished_at) AS last_finished_at
    FROM "${aws_glue_catalog_database.sweep.name}"."${local.athena_tables["shard_outcomes"]}" AS o
    WHERE run_date >= current_date - INTERVAL '30' DAY
      -- a failure beside a success of the same shard is stale (repaired on the next touch)
      AND (status = 'success' OR NOT EXISTS (
        SELECT 1 FROM "${aws_glue_catalog_database.sweep.name}"."${local.athena_tables["shard_outcomes"]}" AS s
        WHERE s.status = 'success' AND s.run_date = o.run_date
          AND s.run_id = o.run_id AND s.shard_id = o.shard_id))
    GROUP BY run_id
    ORDER BY failed DESC, run_id
  SQL
}

resource "aws_athena_named_query" "failed_shards" {
  name        = "${local.name}-failed-shards"
  description = "The latest failed shards with their error (last 30 days)."
  workgroup   = aws_athena_workgroup.analytics.id
  database    = aws_glue_catalog_database.sweep.name
  query       = <<-SQL
    SELECT
      run_id,
      shard_id,
      attempts,
      error_type,
      error_message,
      finished_at
    FROM "${aws_glue_catalog_database.sweep.name}"."${local.athena_tables["shard_outcomes"]}" AS o
    WHERE run_date >= current_date - INTERVAL '30' DAY
      AND status = 'failure'
      -- a failure beside a success of the same shard is stale (repaired on the next touch)
      AND NOT EXISTS (
        SELECT 1 FROM "${aws_glue_catalog_database.sweep.name}"."${local.athena_tables["shard_outcomes"]}" AS s
        WHERE s.status = 'success' AND s.run_date = o.run_date
          AND s.run_id = o.run_id AND s.shard_id = o.shard_id)
    ORDER BY finished_at DESC, run_id, shard_id
    LIMIT 100
  SQL
}
