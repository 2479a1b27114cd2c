-- Question: what does the distribution of rider waits look like per commission rate and
-- fleet size, trip by trip? Completed trips requested inside the measurement window;
-- percentiles are approximate (approx_percentile), cancellations counted separately.
-- shard_metrics' wait_* differ slightly: they also count riders picked up but still in
-- the car when the run ends.
SELECT
    run_id,
    commission_rate,
    num_drivers,
    count_if(trip_status = 'completed') AS completed_trips,
    count_if(trip_status = 'cancelled') AS cancelled_trips,
    approx_percentile(CASE WHEN trip_status = 'completed' THEN wait_min END, 0.5) AS wait_p50_min,
    approx_percentile(CASE WHEN trip_status = 'completed' THEN wait_min END, 0.95) AS wait_p95_min,
    avg(CASE WHEN trip_status = 'completed' THEN pickup_km END) AS pickup_km_mean,
    avg(CASE WHEN trip_status = 'completed' THEN trip_km END) AS trip_km_mean
FROM trip_data
WHERE in_window
GROUP BY run_id, commission_rate, num_drivers
ORDER BY run_id, commission_rate, num_drivers
