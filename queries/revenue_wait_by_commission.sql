-- Question: how do platform revenue and rider waits move with the commission rate?
-- One row per run and commission_rate, averaged over every other swept dimension and
-- every replication. Revenue per hour divides by the measurement window
-- (horizon_min - warmup_min), so runs with different horizons compare.
-- completion_rate is pooled (all served / all resolved requests), not a mean of
-- per-point rates, so points with more requests weigh more.
-- Narrow to one run with: SELECT * FROM (<this query>) AS q WHERE run_id = '...'
SELECT
    run_id,
    commission_rate,
    count(*) AS simulations,
    avg(CAST(platform_revenue AS DOUBLE)) AS platform_revenue_mean,
    avg(CAST(platform_revenue AS DOUBLE) * 60.0
        / CAST(window_end_minute - window_start_minute AS DOUBLE)) AS platform_revenue_per_hour,
    avg(CAST(gross_bookings AS DOUBLE)) AS gross_bookings_mean,
    avg(wait_p95_min) AS wait_p95_min_mean,
    max(wait_p95_min) AS wait_p95_min_max,
    CAST(sum(served) AS DOUBLE) / NULLIF(sum(served + cancelled), 0) AS completion_rate
FROM shard_metrics
GROUP BY run_id, commission_rate
ORDER BY run_id, commission_rate
